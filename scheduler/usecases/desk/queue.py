"""The on-site queue: check-in, call, serve, complete, miss. One transaction each.

Every transition is a conditional UPDATE on the ticket's status, so two clerks
pressing "call next" at once get two different tickets, and a ticket is never
completed twice. The hall's crowd cap is a stored counter, taken and given back
like the booking caps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from scheduler.db import audit, seats
from scheduler.db.appointments import Loaded, load
from scheduler.db.engine import current_engine
from scheduler.db.queue_tables import QueueTicket, TicketSequence
from scheduler.db.records import OfficeRecord, office_of
from scheduler.db.tables import Appointment, AppointmentEvent, Office, Party
from scheduler.domain.queue import (
    SERVICE_PREFIX,
    arrival,
    call_order_at,
    expected_wait_minutes,
    ticket_label,
)
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import keyed_hash, normalize_reference
from scheduler.notify.live import board_change
from scheduler.settings import Settings
from scheduler.usecases.couples.texting import notify_couple

ACTIVE_TICKET = ("waiting", "called", "serving")
# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "recall": (("called",), "called"),
    "serve": (("called",), "serving"),
    "complete": (("serving", "called"), "completed"),
    "no-show": (("called",), "missed"),
    "requeue": (("missed",), "waiting"),
}


@dataclass(frozen=True)
class CheckIn:
    office_id: int
    reference: str | None = None
    id_number: str | None = None
    id_type: str = "mainland_id"
    parties_present: frozenset[str] = frozenset()
    accept_late: bool = False
    priority: bool = False


async def _office(office_id: int) -> OfficeRecord:
    office = await Office.select().where(Office.id == office_id).first()
    if office is None:
        raise DomainError("not-found")
    return office_of(office)


async def find(cmd: CheckIn, settings: Settings) -> Loaded:
    """The appointment a check-in names (reference, or a confirmed one by ID document)."""
    reference = cmd.reference
    if not reference and cmd.id_number:
        id_hash = keyed_hash(
            settings.secret_key, "id", f"{cmd.id_type}:{cmd.id_number.strip().upper()}"
        )
        row = await (
            Party.select(Party.appointment.reference)
            .where(
                (Party.id_hash == id_hash)
                & (Party.appointment.office == cmd.office_id)
                & (Party.appointment.status == "confirmed")
            )
            .first()
        )
        reference = row["appointment.reference"] if row else None
    loaded = await load(normalize_reference(reference)) if reference else None
    # Another office's appointment is "not found" here: offices see only their own.
    if loaded is None or loaded.office.id != cmd.office_id:
        raise DomainError("not-found")
    return loaded


async def _take_hall(
    office: OfficeRecord, day: date, people: int, minutes_per_couple: float
) -> None:
    if not await seats.take_hall(office.id, day, people, office.onsite_cap):
        raise DomainError(
            "hall-full", minutes=await _wait_estimate(office, day, minutes_per_couple)
        )


async def _next_number(office_id: int, day: date, prefix: str) -> int:
    await TicketSequence.insert(
        TicketSequence(office=office_id, day=day, prefix=prefix, last=0)
    ).on_conflict(action="DO NOTHING")
    rows = await TicketSequence.raw(
        "UPDATE ticket_sequence SET last = last + 1 WHERE office = {} AND day = {} AND prefix = {}"
        " RETURNING last",
        office_id,
        day,
        prefix,
    )
    return int(rows[0]["last"])


async def check_in(
    cmd: CheckIn, *, now: datetime, settings: Settings, actor: audit.Actor
) -> dict[str, Any]:
    """Both partners at the desk: issue a queue ticket, within the hall's crowd cap."""
    loaded = await find(cmd, settings)
    office = loaded.office
    tz = office.tz
    slot_start = loaded.slot.start_at
    if loaded.slot.day != now.astimezone(tz).date():
        raise DomainError("not-today")
    if loaded.appointment.status != "confirmed":
        raise await already_checked_in(loaded) or DomainError("not-pending")
    if cmd.parties_present != frozenset({"a", "b"}):
        raise DomainError("both-parties-required")
    verdict = arrival(
        now, slot_start, settings.checkin_early_minutes, settings.checkin_late_minutes
    )
    if verdict == "early":
        raise DomainError("too-early", minutes=settings.checkin_early_minutes)
    if verdict == "late" and not cmd.accept_late:
        raise DomainError("late-decision-needed")
    day = loaded.slot.day
    async with board_change(office.id):
        moved = await (
            Appointment.update({Appointment.status: "checked_in"})
            .where((Appointment.id == loaded.id) & (Appointment.status == "confirmed"))
            .returning(Appointment.id)
        )
        if not moved:  # another desk was quicker: say with which ticket
            raise await already_checked_in(loaded) or DomainError("not-pending")
        await _take_hall(office, day, loaded.appointment.people, settings.queue_minutes_per_couple)
        service = loaded.appointment.service
        number = await _next_number(office.id, day, SERVICE_PREFIX.get(service, "X"))
        await QueueTicket.insert(
            QueueTicket(
                office=office.id,
                day=day,
                appointment=loaded.id,
                service=service,
                label=ticket_label(service, number),
                status="waiting",
                priority=cmd.priority,
                order_at=call_order_at(slot_start, now, cmd.priority),
                checked_in_at=now,
            )
        )
        await _event(loaded.id, "checked_in", now, actor)
        await audit.record(
            actor,
            "queue.check_in",
            office_id=office.id,
            object_type="appointment",
            object_id=loaded.appointment.reference,
            before={"status": "confirmed"},
            after={"status": "checked_in", "label": ticket_label(service, number)},
            now=now,
        )
    return await ticket_view(loaded.id)


async def already_checked_in(loaded: Loaded) -> DomainError | None:
    """ "Already checked in — ticket M001, called at 09:12" (or waiting since), if so."""
    ticket = await QueueTicket.select().where(QueueTicket.appointment == loaded.id).first()
    if ticket is None:
        return None
    called = ticket["called_at"]
    return DomainError(
        "already-checked-in",
        reason="called" if called else "waiting",
        label=ticket["label"],
        time=(called or ticket["checked_in_at"]).astimezone(loaded.tz).strftime("%H:%M"),
        counter=ticket["counter"] or "",
    )


async def _event(appointment_id: int, kind: str, now: datetime, actor: audit.Actor) -> None:
    await AppointmentEvent.insert(
        AppointmentEvent(appointment=appointment_id, kind=kind, actor=actor.username[:64], at=now)
    )


async def call_next(
    office_id: int, counter: str, *, now: datetime, actor: audit.Actor, settings: Settings
) -> dict[str, Any]:
    """Give the next waiting ticket to ``counter``; 409 queue-empty when none waits."""
    today = now.astimezone((await _office(office_id)).tz).date()
    skip_locked = " FOR UPDATE SKIP LOCKED" if isinstance(current_engine(), PostgresEngine) else ""
    async with board_change(office_id):
        rows = await QueueTicket.raw(
            "UPDATE queue_ticket SET status = 'called', counter = {}, called_at = {},"  # noqa: S608
            " call_count = call_count + 1"
            " WHERE id = (SELECT id FROM queue_ticket WHERE office = {} AND day = {}"
            "  AND status = 'waiting' ORDER BY order_at, checked_in_at, id LIMIT 1"
            + skip_locked
            + ")"
            " AND status = 'waiting' RETURNING id, appointment",
            counter,
            now,
            office_id,
            today,
        )
        if not rows:
            raise DomainError("queue-empty")
        await _called(rows[0]["appointment"], counter, now, actor, rows[0]["id"], settings)
        await audit.record(
            actor,
            "queue.call_next",
            office_id=office_id,
            object_type="queue_ticket",
            object_id=rows[0]["id"],
            after={"status": "called", "counter": counter},
            now=now,
        )
    return await ticket_view(rows[0]["appointment"])


async def _called(
    appointment_id: int,
    counter: str,
    now: datetime,
    actor: audit.Actor,
    ticket_id: int,
    settings: Settings,
) -> None:
    """Status, history and the "please come to counter N" SMS of one call."""
    await Appointment.update({Appointment.status: "called"}).where(Appointment.id == appointment_id)
    await _event(appointment_id, "called", now, actor)
    ticket = (
        await QueueTicket.select(
            QueueTicket.label,
            QueueTicket.call_count,
            QueueTicket.requeued,
            QueueTicket.appointment.reference,
        )
        .where(QueueTicket.id == ticket_id)
        .first()
    )
    loaded = await load(ticket["appointment.reference"]) if ticket else None
    if ticket is not None and loaded is not None:
        await notify_couple(
            loaded,
            "called",
            now,
            settings,
            # One message per call; a re-queued ticket's calls count afresh.
            suffix=f":{'r' if ticket['requeued'] else ''}{ticket['call_count']}",
            urgent=True,
            extra={"counter": counter, "label": ticket["label"]},
        )


APPOINTMENT_STATUS = {
    "serving": "serving",
    "completed": "completed",
    "missed": "no_show",
    "waiting": "checked_in",
}


async def act(
    ticket_id: int,
    action: str,
    *,
    office_ids: frozenset[int] | None,
    now: datetime,
    actor: audit.Actor,
    settings: Settings,
) -> dict[str, Any]:
    """recall / serve / complete / no-show / requeue one ticket."""
    if action not in TRANSITIONS:
        raise DomainError("not-found")
    ticket = await QueueTicket.select().where(QueueTicket.id == ticket_id).first()
    if ticket is None or (office_ids is not None and ticket["office"] not in office_ids):
        raise DomainError("not-found")
    sources, target = TRANSITIONS[action]
    if action == "no-show" and ticket["call_count"] < settings.queue_max_calls:
        raise DomainError("bad-transition", reason="calls", calls=settings.queue_max_calls)
    if action == "requeue" and ticket["requeued"]:
        raise DomainError("bad-transition", reason="requeued")
    values: dict[Any, Any] = {QueueTicket.status: target}
    if target in ("completed", "missed"):
        values[QueueTicket.finished_at] = now
    if action == "requeue":
        # A re-queued couple joins the back of the queue, once.
        values.update(
            {QueueTicket.requeued: True, QueueTicket.order_at: now, QueueTicket.call_count: 0}
        )
    async with board_change(ticket["office"]):
        changed = await (
            QueueTicket.update(values)
            .where((QueueTicket.id == ticket_id) & QueueTicket.status.is_in(list(sources)))
            .returning(QueueTicket.id)
        )
        if not changed:
            raise DomainError("bad-transition", reason="state")
        await _after(ticket, action, target, now, actor, settings)
        await audit.record(
            actor,
            f"queue.{action}",
            office_id=ticket["office"],
            object_type="queue_ticket",
            object_id=ticket_id,
            before={"status": ticket["status"]},
            after={"status": target},
            now=now,
        )
    return await ticket_view(ticket["appointment"])


async def _after(
    ticket: dict[str, Any],
    action: str,
    target: str,
    now: datetime,
    actor: audit.Actor,
    settings: Settings,
) -> None:
    if action == "recall":
        await QueueTicket.update(
            {QueueTicket.call_count: QueueTicket.call_count + 1, QueueTicket.called_at: now}
        ).where(QueueTicket.id == ticket["id"])
        await _called(
            ticket["appointment"], ticket["counter"] or "", now, actor, ticket["id"], settings
        )
        return
    await Appointment.update({Appointment.status: APPOINTMENT_STATUS[target]}).where(
        Appointment.id == ticket["appointment"]
    )
    await _event(ticket["appointment"], action, now, actor)
    people = 2
    if target in ("completed", "missed"):
        await seats.free_hall(ticket["office"], ticket["day"], people)
    elif action == "requeue":
        office = await _office(ticket["office"])
        await _take_hall(office, ticket["day"], people, settings.queue_minutes_per_couple)


async def ticket_view(appointment_id: int) -> dict[str, Any]:
    row = await (
        QueueTicket.select(*QueueTicket.all_columns(), QueueTicket.appointment.reference)
        .where(QueueTicket.appointment == appointment_id)
        .first()
    )
    if row is None:
        raise DomainError("not-found")
    return {
        "id": row["id"],
        "label": row["label"],
        "status": row["status"],
        "counter": row["counter"],
        "priority": row["priority"],
        "reference": row["appointment.reference"],
        "call_count": row["call_count"],
        "checked_in_at": row["checked_in_at"].isoformat(),
        "called_at": row["called_at"].isoformat() if row["called_at"] else None,
    }


async def _wait_estimate(office: OfficeRecord, day: date, minutes_per_couple: float) -> int:
    waiting = await QueueTicket.count().where(
        (QueueTicket.office == office.id)
        & (QueueTicket.day == day)
        & (QueueTicket.status == "waiting")
    )
    return expected_wait_minutes(waiting, office.counters, minutes_per_couple)


async def board(office_id: int, now: datetime, minutes_per_couple: float) -> dict[str, Any]:
    """``minutes_per_couple``: settings.queue_minutes_per_couple, for the expected wait."""
    """What the hall screen shows: recent calls, who is next, how long the wait is."""
    office = await _office(office_id)
    today = now.astimezone(office.tz).date()
    tickets = await QueueTicket.select(
        QueueTicket.label,
        QueueTicket.status,
        QueueTicket.counter,
        QueueTicket.called_at,
        QueueTicket.order_at,
        QueueTicket.checked_in_at,
        QueueTicket.id,
    ).where((QueueTicket.office == office_id) & (QueueTicket.day == today))
    called = sorted(
        (t for t in tickets if t["status"] in ("called", "serving") and t["called_at"]),
        key=lambda t: t["called_at"],
        reverse=True,
    )
    waiting = sorted(
        (t for t in tickets if t["status"] == "waiting"),
        key=lambda t: (t["order_at"], t["checked_in_at"], t["id"]),
    )
    return {
        "office": {
            "code": office.code,
            "name_zh": office.name_zh,
            "name_en": office.name_en,
        },
        "date": today.isoformat(),
        "called": [
            {"label": t["label"], "counter": t["counter"], "status": t["status"]}
            for t in called[:6]
        ],
        "next": [t["label"] for t in waiting[:6]],
        "waiting": len(waiting),
        "expected_wait_minutes": await _wait_estimate(office, today, minutes_per_couple),
        "at": now.isoformat(),
    }
