"""Desk pages of one office (issue 4): the day's list, check-in, the queue desk.

Handlers parse the form, make one use-case call
(scheduler.usecases.desk.day_list, scheduler.usecases.desk.queue)
and render. A clerk sees only their offices: another office's pages answer 404,
anonymous visitors are sent to the login page. Errors of an action (hall full,
too early, nobody waiting) are shown in place on the page that asked, with the
use case's status code.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.db.queue_tables import QueueTicket
from scheduler.db.records import OfficeRecord
from scheduler.db.tables import Appointment
from scheduler.domain.identity import ID_TYPES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.usecases.calendar.slots import list_offices
from scheduler.usecases.desk import checkin_card, queue
from scheduler.usecases.desk import day_list as desk
from scheduler.usecases.staff.accounts import StaffMember

# A module reference, not names: scheduler.web.api.desk imports scheduler.web.staff
# (for its guards), whose package imports this module.
from scheduler.web.api import desk as desk_api
from scheduler.web.auth import client_ip, login_redirect, provide_staff, require_staff
from scheduler.web.locale import request_locale
from scheduler.web.staff.pages import field, label, render

BASE = "/staff/offices"
COUNTER_COOKIE = "desk_counter"
COUNTER = re.compile(r"[A-Za-z0-9-]{1,16}")
DateParam = Annotated[date | None, QueryParameter(name="date", required=False)]


def error_text(request: Request[Any, Any, Any], exc: DomainError) -> str:
    return translate(request_locale(request), exc.key, **exc.params)


def checked(form: dict[str, Any], key: str) -> bool:
    return field(form, key) in ("on", "1", "true", "yes")


def today_of(office: OfficeRecord) -> date:
    return utcnow().astimezone(office.tz).date()


def checkin_page(
    request: Request[Any, Any, Any],
    member: StaffMember,
    office: OfficeRecord,
    *,
    form: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
    ticket: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Template:
    return no_store(
        render(
            request,
            "desk/checkin.html",
            status=status,
            member=member,
            office=office,
            form=form or {},
            card=card,
            ticket=ticket,
            error=error,
            id_types=ID_TYPES,
            label=label,
        )
    )


def no_store(response: Template) -> Template:
    """Pages showing full ID numbers or phones are never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


async def _needs_rebooking_days(office_id: int) -> list[date]:
    """Days holding couples a blackout could not place (desk.day_list is per day)."""
    rows = await (
        Appointment.select(Appointment.slot.day)
        .where((Appointment.office == office_id) & (Appointment.status == "needs_rebooking"))
        .distinct()
    )
    return sorted({r["slot.day"] for r in rows})


async def _desk_tickets(office_id: int, day: date, counter: str) -> dict[str, Any]:
    """This counter's called or served tickets, and the day's missed tickets."""
    rows = await QueueTicket.select(
        QueueTicket.id,
        QueueTicket.label,
        QueueTicket.status,
        QueueTicket.counter,
        QueueTicket.call_count,
        QueueTicket.requeued,
        QueueTicket.priority,
        QueueTicket.called_at,
        QueueTicket.appointment.reference,
    ).where(
        (QueueTicket.office == office_id)
        & (QueueTicket.day == day)
        & QueueTicket.status.is_in(["called", "serving", "missed"])
    )
    current = sorted(
        (r for r in rows if r["status"] != "missed" and r["counter"] == counter),
        key=lambda r: r["called_at"],
        reverse=True,
    )
    missed = sorted((r for r in rows if r["status"] == "missed"), key=lambda r: r["label"])
    return {"current": current, "missed": missed}


class DeskPages(Controller):
    path = BASE
    include_in_schema = False
    guards = [require_staff]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    @get("/")
    async def offices(
        self, request: Request[Any, Any, Any], member: NamedDependency[StaffMember]
    ) -> Template:
        visible = [
            o
            for o in await list_offices()
            if member.role == "superadmin" or (o["code"] in member.office_codes)
        ]
        return render(request, "desk/offices.html", member=member, offices=visible)

    # --- the day ---------------------------------------------------------------------

    async def _day_page(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        office: OfficeRecord,
        day: date,
        status: str | None,
        q: str | None,
        revealed: dict[str, Any] | None = None,
    ) -> Template:
        rows = await desk.day_list(
            office, day, status=status or None, query=q or None, settings=request.app.state.settings
        )
        return render(
            request,
            "desk/day.html",
            member=member,
            office=office,
            day=day,
            chosen=status or "",
            q=q or "",
            rows=rows,
            statuses=desk.LISTED,
            revealed=revealed,
            label=label,
        )

    @get("/{office:str}/day")
    async def day(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        date_: DateParam = None,
        status: Annotated[str | None, QueryParameter(required=False)] = None,
        q: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        row = await desk_api.scoped_office(office, member)
        return await self._day_page(request, member, row, date_ or today_of(row), status, q)

    @post("/{office:str}/appointments/{reference:str}/reveal")
    async def reveal(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Template:
        row = await desk_api.scoped_office(office, member)
        revealed = await desk.reveal(
            row.id,
            reference,
            actor=member,
            ip=client_ip(request),
            now=utcnow(),
            settings=request.app.state.settings,
        )
        try:
            day = date.fromisoformat(field(data, "date"))
        except ValueError:
            day = today_of(row)
        page = await self._day_page(
            request, member, row, day, field(data, "status"), field(data, "q"), revealed
        )
        return no_store(page)

    @get("/{office:str}/worklist")
    async def worklist(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
    ) -> Template:
        row = await desk_api.scoped_office(office, member)
        settings = request.app.state.settings
        days = [
            (
                day,
                await desk.day_list(
                    row, day, status="needs_rebooking", query=None, settings=settings
                ),
            )
            for day in await _needs_rebooking_days(row.id)
        ]
        return render(request, "desk/worklist.html", member=member, office=row, days=days)

    # --- check-in --------------------------------------------------------------------

    @get("/{office:str}/checkin")
    async def checkin_form(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
    ) -> Template:
        row = await desk_api.scoped_office(office, member)
        return checkin_page(request, member, row)

    @post("/{office:str}/checkin")
    async def checkin(
        self,
        request: Request[Any, Any, Any],
        state: State,
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Template:
        """Two steps: "find" shows who the appointment is for (names, slot, pre-check,
        flags); only then does the clerk tick both present and issue the ticket. A
        form that already carries both ticks (the API's shape) checks in directly."""
        row = await desk_api.scoped_office(office, member)
        form = {k: field(data, k) for k in ("reference", "id_type", "id_number")}
        present = frozenset(p for p in ("a", "b") if checked(data, f"party_{p}"))
        cmd = queue.CheckIn(
            office_id=row.id,
            reference=form["reference"] or None,
            id_number=None if form["reference"] else form["id_number"] or None,
            id_type=form["id_type"] if form["id_type"] in ID_TYPES else "mainland_id",
            parties_present=present,
            accept_late=checked(data, "accept_late"),
            priority=checked(data, "priority"),
        )
        checking_in = field(data, "step") == "confirm" or bool(present)
        now = utcnow()
        ticket, card, error, status = None, None, None, 200
        try:
            if not cmd.reference and not cmd.id_number:
                raise DomainError("invalid-input", field="reference", reason="reference-or-id")
            if checking_in:
                ticket = await queue.check_in(cmd, now=now, settings=state.settings, actor=member)
                cmd = replace(cmd, reference=ticket["reference"], id_number=None)
            card = await checkin_card.card(cmd, now=now, settings=state.settings)
        except DomainError as exc:
            error, status = error_text(request, exc), exc.status
            if checking_in and exc.slug not in ("not-found", "invalid-input"):
                # Refused (late, one partner missing, ...): the card stays in view.
                card = await checkin_card.card(cmd, now=now, settings=state.settings)
        # After a ticket, a clean form for the next couple; otherwise what was typed.
        kept = {} if ticket else form | {"accept_late": cmd.accept_late, "priority": cmd.priority}
        return checkin_page(
            request, member, row, form=kept, card=card, ticket=ticket, error=error, status=status
        )

    # --- the queue desk --------------------------------------------------------------

    async def _queue_page(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        office: OfficeRecord,
        counter: str,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        board = await queue.board(
            office.id, utcnow(), request.app.state.settings.queue_minutes_per_couple
        )
        tickets = await _desk_tickets(office.id, date.fromisoformat(board["date"]), counter)
        return render(
            request,
            "desk/queue.html",
            status=status,
            member=member,
            office=office,
            counter=counter,
            board=board,
            error=error,
            max_calls=request.app.state.settings.queue_max_calls,
            label=label,
            **tickets,
        )

    @get("/{office:str}/queue")
    async def queue_desk(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
    ) -> Template:
        row = await desk_api.scoped_office(office, member)
        counter = request.cookies.get(COUNTER_COOKIE, "")
        return await self._queue_page(
            request, member, row, counter if COUNTER.fullmatch(counter) else ""
        )

    @post("/{office:str}/queue/call-next")
    async def call_next(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        row = await desk_api.scoped_office(office, member)
        counter = field(data, "counter")
        try:
            if not COUNTER.fullmatch(counter):
                raise DomainError("invalid-input", field="counter", reason="desk-counter")
            await queue.call_next(
                row.id, counter, now=utcnow(), actor=member, settings=request.app.state.settings
            )
        except DomainError as exc:
            return await self._queue_page(
                request, member, row, counter, error_text(request, exc), exc.status
            )
        cookie = Cookie(
            key=COUNTER_COOKIE,
            value=counter,
            path=f"{BASE}/{row.code}",
            max_age=30 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=request.app.state.settings.public_base_url.startswith("https://"),
        )
        return Redirect(f"{BASE}/{row.code}/queue", status_code=303, cookies=[cookie])

    @post("/{office:str}/queue/{ticket:int}/{action:str}")
    async def act(
        self,
        request: Request[Any, Any, Any],
        state: State,
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        ticket: FromPath[int],
        action: FromPath[str],
    ) -> Response[Any]:
        row = await desk_api.scoped_office(office, member)
        try:
            await queue.act(
                ticket,
                action,
                office_ids=frozenset({row.id}),
                now=utcnow(),
                actor=member,
                settings=state.settings,
            )
        except DomainError as exc:
            counter = request.cookies.get(COUNTER_COOKIE, "")
            return await self._queue_page(
                request, member, row, counter, error_text(request, exc), exc.status
            )
        return Redirect(f"{BASE}/{row.code}/queue", status_code=303)
