"""Staff API of an office's desk: the day's list, reveals, check-in and the queue.

Every route needs a signed-in member (401); offices outside the member's scope
answer 404, exactly like objects that do not exist.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import Meta

from scheduler.db.records import OfficeRecord
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.calendar.slots import office_by_code
from scheduler.usecases.desk import day_list as desk
from scheduler.usecases.desk import queue
from scheduler.usecases.staff.accounts import StaffMember, can_see_office
from scheduler.web.api.admin_types import DayAppointmentOut, QueueStateOut, RevealedOut
from scheduler.web.api.public import problems
from scheduler.web.auth import client_ip, provide_staff, require_staff

Counter = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]


class CheckInIn(msgspec.Struct, forbid_unknown_fields=True):
    parties_present: list[Literal["a", "b"]]
    reference: Annotated[str, Meta(max_length=32)] | None = None
    id_number: Annotated[str, Meta(max_length=32)] | None = None
    id_type: Literal["mainland_id", "hk_macau_permit", "taiwan_permit", "passport"] = "mainland_id"
    accept_late: bool = False
    priority: bool = False


class CallNextIn(msgspec.Struct, forbid_unknown_fields=True):
    counter: Counter


class TicketOut(msgspec.Struct):
    id: int
    label: str
    status: str
    counter: str | None
    priority: bool
    reference: str
    call_count: int
    checked_in_at: str
    called_at: str | None


async def scoped_office(code: str, member: StaffMember) -> OfficeRecord:
    office = await office_by_code(code)
    if not can_see_office(member, office.id):
        raise DomainError("not-found")
    return office


class DeskApi(Controller):
    path = "/api/v1"
    tags = ("desk",)
    guards = [require_staff]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @get(
        "/offices/{office:str}/appointments",
        summary="The day's appointments (masked)",
        responses=problems(401, 404, 422),
    )
    async def day(
        self,
        state: State,
        office: FromPath[str],
        member: NamedDependency[StaffMember],
        date_: Annotated[date | None, QueryParameter(name="date", required=False)] = None,
        status: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
    ) -> list[DayAppointmentOut]:
        row = await scoped_office(office, member)
        day = date_ or utcnow().astimezone(row.tz).date()
        found = await desk.day_list(row, day, status=status, query=q, settings=state.settings)
        return msgspec.convert(found, list[DayAppointmentOut])

    @post(
        "/offices/{office:str}/appointments/{reference:str}/reveal",
        status_code=200,
        summary="Full ID numbers and phones of one appointment (audited)",
        responses=problems(401, 404),
    )
    async def reveal(
        self,
        request: Request[Any, Any, Any],
        office: FromPath[str],
        reference: FromPath[str],
        member: NamedDependency[StaffMember],
    ) -> RevealedOut:
        row = await scoped_office(office, member)
        revealed = await desk.reveal(
            row.id,
            reference,
            actor=member,
            ip=client_ip(request),
            now=utcnow(),
            settings=request.app.state.settings,
        )
        return msgspec.convert(revealed, RevealedOut)

    @post(
        "/offices/{office:str}/checkins",
        status_code=201,
        summary="Check a couple in",
        responses=problems(401, 404, 409, 422),
    )
    async def check_in(
        self,
        state: State,
        office: FromPath[str],
        data: JSONBody[CheckInIn],
        member: NamedDependency[StaffMember],
    ) -> TicketOut:
        row = await scoped_office(office, member)
        if not data.reference and not data.id_number:
            raise DomainError("invalid-input", field="reference", reason="reference-or-id")
        cmd = queue.CheckIn(
            office_id=row.id,
            reference=data.reference,
            id_number=data.id_number,
            id_type=data.id_type,
            parties_present=frozenset(data.parties_present),
            accept_late=data.accept_late,
            priority=data.priority,
        )
        ticket = await queue.check_in(cmd, now=utcnow(), settings=state.settings, actor=member)
        return msgspec.convert(ticket, TicketOut)

    @post(
        "/offices/{office:str}/queue/call-next",
        status_code=200,
        summary="Call the next ticket to a counter",
        responses=problems(401, 404, 409, 422),
    )
    async def call_next(
        self,
        office: FromPath[str],
        data: JSONBody[CallNextIn],
        member: NamedDependency[StaffMember],
        state: State,
    ) -> TicketOut:
        row = await scoped_office(office, member)
        return msgspec.convert(
            await queue.call_next(
                row.id, data.counter, now=utcnow(), actor=member, settings=state.settings
            ),
            TicketOut,
        )

    @post(
        "/queue/{ticket:int}/{action:str}",
        status_code=200,
        summary="recall, serve, complete, no-show or requeue",
        responses=problems(401, 404, 409),
    )
    async def act(
        self,
        state: State,
        ticket: FromPath[int],
        action: FromPath[str],
        member: NamedDependency[StaffMember],
    ) -> TicketOut:
        scope = None if member.role == "superadmin" else member.offices
        result = await queue.act(
            ticket, action, office_ids=scope, now=utcnow(), actor=member, settings=state.settings
        )
        return msgspec.convert(result, TicketOut)

    @get(
        "/offices/{office:str}/queue",
        summary="The queue now (what the board shows)",
        responses=problems(401, 404),
    )
    async def queue_state(
        self, office: FromPath[str], member: NamedDependency[StaffMember], state: State
    ) -> QueueStateOut:
        row = await scoped_office(office, member)
        minutes = state.settings.queue_minutes_per_couple
        return msgspec.convert(await queue.board(row.id, utcnow(), minutes), QueueStateOut)
