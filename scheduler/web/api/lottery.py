"""Lottery API (issue 7): the public lottery view and the couples' applications
under ``/api/v1/lotteries``, the admin's under ``/api/v1/admin/lotteries``."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from scheduler.kernel.clock import utcnow
from scheduler.usecases.calendar import lottery_days
from scheduler.usecases.couples.partners import PartyInput
from scheduler.usecases.lottery import apply as lottery_apply
from scheduler.usecases.lottery import dates as lottery_admin
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin import Clock, ServiceName, scope_of
from scheduler.web.api.admin_types import LotteryAdminOut, LotteryOut
from scheduler.web.api.public import ManageToken, problems
from scheduler.web.api.schemas import ConfirmIn, Locale, PartyIn
from scheduler.web.auth import client_ip, provide_staff, requires_role

Body = dict[str, Any]


class PreferenceIn(msgspec.Struct, forbid_unknown_fields=True):
    office: Annotated[str, Meta(min_length=1, max_length=16)]
    start: Clock | None = None  # None: any time that day


class ApplicationIn(msgspec.Struct, forbid_unknown_fields=True):
    party_a: PartyIn
    party_b: PartyIn
    preferences: Annotated[list[PreferenceIn], Meta(min_length=1, max_length=3)]
    locale: Locale = "zh-Hans"


class LotteryIn(msgspec.Struct, forbid_unknown_fields=True, rename={"day": "date"}):
    day: date
    offices: Annotated[list[Annotated[str, Meta(min_length=1, max_length=16)]], Meta(min_length=1)]
    service: ServiceName = "marriage"
    opens_days_before: Annotated[int, Meta(ge=1, le=90)] = 14
    opens_at: Clock = "09:00"
    closes_days_before: Annotated[int, Meta(ge=0, le=89)] = 7
    closes_at: Clock = "09:00"
    confirm_hours: Annotated[int, Meta(ge=1, le=336)] = 48


def application_input(data: ApplicationIn) -> lottery_apply.ApplicationInput:
    def party(p: PartyIn) -> PartyInput:
        return PartyInput(name=p.name, id_type=p.id_type, id_number=p.id_number, phone=p.phone)

    return lottery_apply.ApplicationInput(
        party_a=party(data.party_a),
        party_b=party(data.party_b),
        preferences=[lottery_apply.PreferenceInput(p.office, p.start) for p in data.preferences],
        locale=data.locale,
    )


def lottery_input(data: LotteryIn) -> lottery_admin.LotteryInput:
    return lottery_admin.LotteryInput(
        day=data.day,
        offices=list(data.offices),
        service=data.service,
        opens_days_before=data.opens_days_before,
        opens_at=time.fromisoformat(data.opens_at),
        closes_days_before=data.closes_days_before,
        closes_at=time.fromisoformat(data.closes_at),
        confirm_hours=data.confirm_hours,
    )


class LotteryApi(Controller):
    path = "/api/v1/lotteries"
    tags = ("lottery",)

    @get("/", summary="Lotteries whose date is still ahead")
    async def upcoming(self) -> list[LotteryOut]:
        return msgspec.convert(await lottery_days.upcoming(utcnow()), list[LotteryOut])

    @get(
        "/{lottery_id:int}",
        summary="A lottery: window, seed hash; after the draw the seed and the draw order",
        responses=problems(404),
    )
    async def one(self, lottery_id: FromPath[int]) -> LotteryOut:
        return msgspec.convert(await lottery_days.view_of(lottery_id), LotteryOut)

    @get(
        "/{lottery_id:int}/applications/{reference:str}",
        summary="View an application (X-Manage-Token)",
        responses=problems(404),
    )
    async def application(
        self,
        state: State,
        lottery_id: FromPath[int],
        reference: FromPath[str],
        x_manage_token: ManageToken = None,
    ) -> Body:
        return await lottery_apply.view(lottery_id, reference, x_manage_token, state.settings)

    @post(
        "/{lottery_id:int}/applications/{reference:str}/confirm",
        summary="One party confirms the application with the code sent to their phone",
        status_code=200,
        responses=problems(404, 409, 422, 429),
    )
    async def confirm(
        self,
        state: State,
        lottery_id: FromPath[int],
        reference: FromPath[str],
        data: JSONBody[ConfirmIn],
    ) -> Body:
        return await lottery_apply.confirm(
            lottery_id, reference, data.party, data.code, now=utcnow(), settings=state.settings
        )

    @post(
        "/{lottery_id:int}/applications/{reference:str}/withdraw",
        summary="Withdraw an application before the window closes (X-Manage-Token)",
        status_code=200,
        responses=problems(404, 409),
    )
    async def withdraw(
        self,
        state: State,
        lottery_id: FromPath[int],
        reference: FromPath[str],
        x_manage_token: ManageToken = None,
    ) -> Body:
        return await lottery_apply.withdraw(
            lottery_id, reference, x_manage_token, now=utcnow(), settings=state.settings
        )


class LotteryApplyApi(Controller):
    """Applying texts both parties: mounted behind the per-client SMS rate limit."""

    path = "/api/v1/lotteries"
    tags = ("lottery",)

    @post(
        "/{lottery_id:int}/applications",
        summary="Apply: both parties, up to three preferences; each party confirms by code",
        status_code=201,
        responses=problems(404, 409, 422, 429),
    )
    async def apply(
        self, state: State, lottery_id: FromPath[int], data: JSONBody[ApplicationIn]
    ) -> Body:
        return await lottery_apply.apply(
            lottery_id, application_input(data), now=utcnow(), settings=state.settings
        )


class LotteryAdminApi(Controller):
    path = "/api/v1/admin/lotteries"
    tags = ("admin",)
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @post(
        "/",
        summary="Put a date in lottery mode at chosen offices",
        responses=problems(401, 403, 404, 409, 422),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LotteryIn],
        member: NamedDependency[StaffMember],
    ) -> Response[LotteryOut]:
        body = await lottery_admin.create(
            lottery_input(data),
            now=utcnow(),
            actor=member,
            scope=scope_of(member),
            ip=client_ip(request),
        )
        return Response(msgspec.convert(body, LotteryOut), status_code=201)

    @get("/", summary="Lotteries of the member's offices", responses=problems(401, 403))
    async def listing(self, member: NamedDependency[StaffMember]) -> list[LotteryAdminOut]:
        found = await lottery_admin.listing(scope_of(member))
        return msgspec.convert(found, list[LotteryAdminOut])

    @get("/{lottery_id:int}", summary="One lottery", responses=problems(401, 403, 404))
    async def one(
        self, lottery_id: FromPath[int], member: NamedDependency[StaffMember]
    ) -> LotteryAdminOut:
        found = await lottery_admin.admin_view(lottery_id, scope_of(member))
        return msgspec.convert(found, LotteryAdminOut)

    @delete(
        "/{lottery_id:int}",
        status_code=200,
        summary="Cancel lottery mode (before the window opens)",
        responses=problems(401, 403, 404, 409),
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        lottery_id: FromPath[int],
        member: NamedDependency[StaffMember],
    ) -> LotteryOut:
        cancelled = await lottery_admin.cancel(
            lottery_id, now=utcnow(), actor=member, scope=scope_of(member), ip=client_ip(request)
        )
        return msgspec.convert(cancelled, LotteryOut)


LOTTERY_API: list[Any] = [LotteryApi, LotteryAdminApi]
