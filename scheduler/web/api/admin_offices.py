"""Admin API of offices, services, opening rules and service suspensions (issue 6).

Admins act on their offices (others: 404), superadmins on all; creating an office
is for superadmins (admins: 403). Clerks 403, anonymous 401.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from scheduler.kernel.clock import utcnow
from scheduler.usecases.offices import offices, suspensions
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin import Clock, ReasonIn, ServiceName, scope_of
from scheduler.web.api.admin_types import OfficeOut, OfficeServiceSavedOut, SuspensionOut
from scheduler.web.api.public import problems
from scheduler.web.auth import provide_staff, requires_role

Name = Annotated[str, Meta(min_length=1, max_length=120)]
Address = Annotated[str, Meta(max_length=255)]
Zone = Annotated[str, Meta(min_length=1, max_length=64)]
Cap = Annotated[int, Meta(ge=0, le=100_000)]
Code = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{1,15}$")]
Interval = Annotated[list[Clock], Meta(min_length=2, max_length=2)]
Weekday = Literal["0", "1", "2", "3", "4", "5", "6"]


class OfficeChange(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Fields to change; a field left out keeps its value."""

    name_zh: Name | None = None
    name_en: Name | None = None
    address_zh: Address | None = None
    address_en: Address | None = None
    region: Annotated[str, Meta(max_length=32)] | None = None
    timezone: Zone | None = None
    counters: Annotated[int, Meta(ge=1, le=200)] | None = None
    day_cap: Cap | None = None
    onsite_cap: Cap | None = None
    booking_days_ahead: Annotated[int, Meta(ge=1, le=366)] | None = None
    booking_opens_at: Clock | None = None
    hold_minutes: Annotated[int, Meta(ge=1, le=240)] | None = None
    active: bool | None = None


class OfficeNew(OfficeChange, forbid_unknown_fields=True, omit_defaults=True):
    code: Code = ""


class ServiceChange(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    slot_minutes: Annotated[int, Meta(ge=5, le=240)] | None = None
    slot_cap: Cap | None = None
    weekly_hours: dict[Weekday, list[Interval]] | None = None
    active: bool | None = None
    # A slot cap under a slot's bookings: refuse (409, the default) or move the
    # couples over it to the nearest free seats (scheduler/usecases/offices/capacity_excess.py).
    excess: Literal["refuse", "move"] | None = None


class SuspensionIn(msgspec.Struct, forbid_unknown_fields=True):
    offices: Annotated[list[Annotated[str, Meta(min_length=1, max_length=16)]], Meta(min_length=1)]
    service: ServiceName
    start_date: date
    end_date: date
    reason: ReasonIn


def given(data: msgspec.Struct) -> dict[str, Any]:
    """The fields a request set (None: not given)."""
    return {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}


def suspension(data: SuspensionIn) -> suspensions.Suspension:
    return suspensions.Suspension(
        offices=list(data.offices),
        service=data.service,
        start_date=data.start_date,
        end_date=data.end_date,
        reason={
            "zh-Hans": data.reason.zh_hans,
            "zh-Hant": data.reason.zh_hant or data.reason.zh_hans,
            "en": data.reason.en or data.reason.zh_hans,
        },
    )


class AdminOfficesApi(Controller):
    path = "/api/v1/admin"
    tags = ("admin",)
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @get("/offices", summary="Offices the admin manages")
    async def list_offices(self, member: NamedDependency[StaffMember]) -> list[OfficeOut]:
        rows = await offices.listed(scope_of(member))
        found = [offices.view(o, await offices.services_of(o["id"])) for o in rows]
        return msgspec.convert(found, list[OfficeOut])

    @post(
        "/offices",
        summary="Create an office (superadmin)",
        guards=[requires_role("superadmin")],
        responses=problems(401, 403, 422),
    )
    async def create(
        self, data: JSONBody[OfficeNew], member: NamedDependency[StaffMember]
    ) -> Response[OfficeOut]:
        values = given(data)
        code = values.pop("code", "")
        body = await offices.create_office(
            code, values, now=utcnow(), actor=member, scope=scope_of(member)
        )
        return Response(msgspec.convert(body, OfficeOut), status_code=201)

    @get("/offices/{code:str}", summary="One office", responses=problems(401, 403, 404))
    async def one(self, code: FromPath[str], member: NamedDependency[StaffMember]) -> OfficeOut:
        office = await offices.office_for(code, scope_of(member))
        return msgspec.convert(
            offices.view(office, await offices.services_of(office["id"])), OfficeOut
        )

    @patch(
        "/offices/{code:str}",
        summary="Change an office (caps never below what is booked)",
        responses=problems(401, 403, 404, 409, 422),
    )
    async def change(
        self,
        code: FromPath[str],
        data: JSONBody[OfficeChange],
        member: NamedDependency[StaffMember],
    ) -> OfficeOut:
        changed = await offices.update_office(
            code, given(data), now=utcnow(), actor=member, scope=scope_of(member)
        )
        return msgspec.convert(changed, OfficeOut)

    @put(
        "/offices/{code:str}/services/{service:str}",
        summary="Add a service or change its slot length, slot cap, weekly hours, state",
        responses=problems(401, 403, 404, 409, 422),
    )
    async def service(
        self,
        code: FromPath[str],
        service: FromPath[str],
        data: JSONBody[ServiceChange],
        member: NamedDependency[StaffMember],
        state: State,
    ) -> OfficeServiceSavedOut:
        changes = given(data)
        excess = changes.pop("excess", "refuse")
        saved = await offices.save_service(
            code,
            service,
            changes,
            now=utcnow(),
            actor=member,
            scope=scope_of(member),
            settings=state.settings,
            excess=excess,
        )
        return msgspec.convert(saved, OfficeServiceSavedOut)

    @get("/suspensions", summary="Recent service suspensions")
    async def suspensions(self, member: NamedDependency[StaffMember]) -> list[SuspensionOut]:
        return msgspec.convert(await suspensions.listed(scope_of(member)), list[SuspensionOut])

    @post(
        "/suspensions",
        summary="Suspend a service at offices for a date range; booked couples are texted",
        responses=problems(401, 403, 404, 422),
    )
    async def suspend(
        self, data: JSONBody[SuspensionIn], member: NamedDependency[StaffMember], state: State
    ) -> Response[SuspensionOut]:
        body = await suspensions.suspend(
            suspension(data),
            now=utcnow(),
            actor=member,
            scope=scope_of(member),
            settings=state.settings,
        )
        return Response(msgspec.convert(body, SuspensionOut), status_code=201)

    @delete(
        "/suspensions/{suspension_id:int}",
        status_code=200,
        summary="Lift a suspension (the service reopens)",
        responses=problems(401, 403, 404, 409),
    )
    async def lift(
        self, suspension_id: FromPath[int], member: NamedDependency[StaffMember]
    ) -> SuspensionOut:
        lifted = await suspensions.lift(
            suspension_id, now=utcnow(), actor=member, scope=scope_of(member)
        )
        return msgspec.convert(lifted, SuspensionOut)
