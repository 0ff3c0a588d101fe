"""Admin API of the editable policies and the no-show bans (issues 6.3 and 4.8).

Policies are system-wide (one value for every office): admins read them, only a
superadmin changes them (403 otherwise). Bans are scoped like the other admin
objects: an admin sees and lifts the bans that arose at their offices (another
office's ban is 404); a superadmin all of them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from scheduler.kernel.clock import utcnow
from scheduler.usecases.policy import bans, policies
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin import scope_of
from scheduler.web.api.admin_types import BanOut, PolicyOut
from scheduler.web.api.public import problems
from scheduler.web.auth import client_ip, provide_staff, requires_role


class PoliciesApi(Controller):
    path = "/api/v1/admin"
    tags = ("admin",)
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @get(
        "/policies",
        summary="Every policy: value in force and default",
        responses=problems(401, 403),
    )
    async def all_policies(self, state: State) -> list[PolicyOut]:
        return msgspec.convert(await policies.view_all(state.settings), list[PolicyOut])

    @get("/policies/{name:str}", summary="One policy", responses=problems(401, 403, 404))
    async def one_policy(self, name: FromPath[str], state: State) -> PolicyOut:
        return msgspec.convert(await policies.view(name, state.settings), PolicyOut)

    @put(
        "/policies/{name:str}",
        summary="Replace a policy's value (superadmin)",
        guards=[requires_role("superadmin")],
        responses=problems(401, 403, 404, 422),
    )
    async def set_policy(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        data: JSONBody[dict[str, Any]],
        member: NamedDependency[StaffMember],
    ) -> PolicyOut:
        ip = client_ip(request)
        changed = await policies.update(
            name, data, actor=member, now=utcnow(), settings=request.app.state.settings, ip=ip
        )
        return msgspec.convert(changed, PolicyOut)

    @get("/bans", summary="No-show bans in force (ID numbers masked)", responses=problems(401, 403))
    async def current_bans(self, member: NamedDependency[StaffMember]) -> list[BanOut]:
        return msgspec.convert(await bans.current_bans(scope_of(member), utcnow()), list[BanOut])

    @delete(
        "/bans/{ban_id:int}",
        status_code=200,
        summary="Lift a ban",
        responses=problems(401, 403, 404, 409),
    )
    async def lift_ban(
        self,
        request: Request[Any, Any, Any],
        ban_id: FromPath[int],
        member: NamedDependency[StaffMember],
    ) -> BanOut:
        lifted = await bans.lift(
            ban_id, scope=scope_of(member), actor=member, now=utcnow(), ip=client_ip(request)
        )
        return msgspec.convert(lifted, BanOut)
