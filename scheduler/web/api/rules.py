"""Admin API of the registration rule sets (issue 12): admins read every version
and the one in force; a superadmin adds a version taking effect on a day (audited)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from scheduler.kernel.clock import utcnow
from scheduler.usecases.policy import rules
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin_types import RuleSetsOut, RuleSetVersionOut
from scheduler.web.api.public import problems
from scheduler.web.auth import client_ip, provide_staff, requires_role


class RulesApi(Controller):
    path = "/api/v1/admin/rules"
    tags = ("admin",)
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @get(
        "/",
        summary="Every rule set version and the one in force today",
        responses=problems(401, 403),
    )
    async def listed(self) -> RuleSetsOut:
        return msgspec.convert(await rules.listed(utcnow()), RuleSetsOut)

    @post(
        "/",
        summary="Add a rule set version taking effect on its effective_from (superadmin)",
        guards=[requires_role("superadmin")],
        status_code=201,
        responses=problems(401, 403, 409, 422),
    )
    async def add(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[dict[str, Any]],
        member: NamedDependency[StaffMember],
    ) -> RuleSetVersionOut:
        added = await rules.add_version(data, member, ip=client_ip(request), now=utcnow())
        return msgspec.convert(added, RuleSetVersionOut)
