"""Applying planned reschedule moves: the seat counters' net changes (set-based,
through scheduler/db/seats.py), the appointments' new slots, the run's items and
history, and the SMS rows, all inside the caller's transaction (a run's batch, or a lowered cap's
excess in scheduler/usecases/offices/capacity_excess.py). Planning lives in
scheduler/usecases/offices/reschedule.py.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import seats
from scheduler.db.appointments import ACTIVE_STATUSES
from scheduler.db.blackout_tables import RescheduleRun
from scheduler.db.engine import insert_rows
from scheduler.db.tables import Appointment, Office, OfficeDay, OnsiteWindow, Party, Slot
from scheduler.domain.blackouts import Candidate
from scheduler.domain.sms import apply_rule
from scheduler.notify.terms import SmsTerms
from scheduler.notify.texts import render_sms, sms_office_name

# How long a run's claim lasts without renewal; each batch renews it.
LEASE = timedelta(minutes=2)


# A conditional UPDATE came back short: counters (or an appointment) changed under
# the batch. The seat writer's own exception, so callers catch one thing.
Conflict = seats.CountersChanged


@dataclass
class Context:
    run_id: int
    blackout: dict[str, Any]
    office_ids: list[int]
    covered: list[int]
    timezones: dict[int, ZoneInfo]
    regions: dict[int, list[int]]


def int_list(values: Iterable[int]) -> str:
    """Integers as an SQL list, ``-1`` when empty. Inlined rather than bound: a batch
    names hundreds of ids, and Piccolo spends milliseconds of Python per query
    turning that many parameters into a statement (docs/performance.md,
    "Blackout reschedule"); ``int()`` keeps anything but a number out."""
    return ", ".join(str(int(v)) for v in values) or "-1"


def _values(rows: Sequence[tuple[int, ...]]) -> tuple[str, list[int]]:
    """A VALUES list of integer tuples with its parameters (typed for PostgreSQL)."""
    width = len(rows[0])
    one = "(" + ", ".join(["CAST({} AS INTEGER)"] * width) + ")"
    return ", ".join([one] * len(rows)), [v for row in rows for v in row]


@dataclass(frozen=True)
class Move:
    appointment: dict[str, Any]
    old_day_row: int | None
    old_window_row: int | None
    to: Candidate | None


RowIds = tuple[dict[tuple[int, date], int], dict[tuple[int, datetime], int]]


async def row_ids(ctx: Context) -> RowIds:
    """office_day and onsite_window ids by (office, day) and (office, window start)."""
    days = {
        (r["office"], r["day"]): r["id"]
        for r in await OfficeDay.select(OfficeDay.id, OfficeDay.office, OfficeDay.day).where(
            OfficeDay.office.is_in(ctx.office_ids or [-1])
        )
    }
    windows = {
        (r["office"], r["window_start"]): r["id"]
        for r in await OnsiteWindow.select(
            OnsiteWindow.id, OnsiteWindow.office, OnsiteWindow.window_start
        ).where(OnsiteWindow.office.is_in(ctx.office_ids or [-1]))
    }
    return days, windows


async def apply_batch(ctx: Context, moves: list[Move], now: datetime, terms: SmsTerms) -> None:
    """Seats, appointments, items, history and SMS (under ``terms``) of one batch
    (inside its transaction)."""
    placed = [m for m in moves if m.to is not None]
    slots: Counter[int] = Counter()
    days: Counter[int] = Counter()
    windows: Counter[int] = Counter()
    for m in placed:
        assert m.to is not None
        people = m.appointment["people"]
        slots[m.to.slot_id] += 1
        slots[m.appointment["slot"]] -= 1
        days[m.to.day_row] += 1
        windows[m.to.window_row] += people
        if m.old_day_row is not None:
            days[m.old_day_row] -= 1
        if m.old_window_row is not None:
            windows[m.old_window_row] -= people
    # Set-based: a few statements per batch, however many moves (scheduler/db/seats.py).
    await seats.apply_net_changes(slots, days, windows)
    if placed:
        # Integers inlined (int() on ids from the database), not bound: Piccolo turns
        # each of the batch's 2,000 parameters into SQL in Python, which cost more
        # than the UPDATE itself (docs/performance.md, "Blackout reschedule").
        values = ", ".join(
            f"({int(m.appointment['id'])}, {int(m.appointment['slot'])},"
            f" {int(m.to.slot_id)}, {int(m.to.office_id)})"
            for m in placed
            if m.to
        )
        rows = await Appointment.raw(
            f"WITH v(id, old, new, office) AS (VALUES {values})"  # noqa: S608 - integers only
            " UPDATE appointment SET slot = v.new, office = v.office FROM v"
            " WHERE appointment.id = v.id AND appointment.slot = v.old"
            " AND appointment.status IN ('pending_confirmation', 'confirmed')"
            " RETURNING appointment.id"
        )
        if len(rows) != len(placed):
            raise Conflict("appointment")
    stranded = [m.appointment["id"] for m in moves if m.to is None]
    if stranded:
        await Appointment.update({Appointment.status: "needs_rebooking"}).where(
            Appointment.id.is_in(stranded) & Appointment.status.is_in(list(ACTIVE_STATUSES))
        )
    await _record(ctx, moves, now, terms)


async def _record(ctx: Context, moves: list[Move], now: datetime, terms: SmsTerms) -> None:
    """Items, history, SMS and run counters of one batch (inside its transaction)."""
    await insert_rows(
        "reschedule_item",
        ("run", "appointment", "outcome", "from_slot", "to_slot", "at"),
        [
            (
                ctx.run_id,
                m.appointment["id"],
                "moved" if m.to else "needs_rebooking",
                m.appointment["slot"],
                m.to.slot_id if m.to else None,
                now,
            )
            for m in moves
        ],
    )
    await insert_rows(
        "appointment_event",
        ("appointment", "kind", "from_slot", "to_slot", "actor", "at"),
        [
            (
                m.appointment["id"],
                "rescheduled" if m.to else "needs_rebooking",
                m.appointment["slot"],
                m.to.slot_id if m.to else None,
                f"run:{ctx.run_id}",
                now,
            )
            for m in moves
        ],
    )
    messages = await _messages(ctx, moves, now, terms)
    await insert_rows("outbox_message", OUTBOX_COLUMNS, messages)
    moved = sum(1 for m in moves if m.to)
    await RescheduleRun.raw(
        "UPDATE reschedule_run SET moved = moved + {}, needs_rebooking = needs_rebooking + {},"
        " notified = notified + {}, lease_expires_at = {} WHERE id = {}",
        moved,
        len(moves) - moved,
        len(messages),
        now + LEASE,
        ctx.run_id,
    )


OUTBOX_COLUMNS = (
    "key",
    "to_phone",
    "template",
    "locale",
    "payload",
    "body",
    "status",
    "due_at",
    "attempts",
    "created_at",
    "urgent",
    "validity_seconds",
    "needs_call",
    "appointment_id",
)


async def _messages(
    ctx: Context, moves: list[Move], now: datetime, terms: SmsTerms
) -> list[tuple[object, ...]]:
    """One urgent SMS per partner; the text rendered once per couple and country rule."""
    ids = int_list(m.appointment["id"] for m in moves)
    parties: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in await Party.raw(
        f"SELECT appointment, role, phone FROM party WHERE appointment IN ({ids})"  # noqa: S608
    ):
        parties[p["appointment"]].append(p)
    offices = {
        o["id"]: o for o in await Office.select().where(Office.id.is_in(list(ctx.timezones)))
    }
    slot_ids = int_list({m.to.slot_id for m in moves if m.to})
    new_slots = {
        s["id"]: s
        for s in await Slot.raw(
            f"SELECT id, start_at FROM slot WHERE id IN ({slot_ids})"  # noqa: S608
        )
    }
    reason = ctx.blackout["reason"] or {}
    validity = terms.validity_seconds
    out: list[tuple[object, ...]] = []
    for m in moves:
        a = m.appointment
        old = a["slot.start_at"].astimezone(ctx.timezones[a["office"]])
        payload = {
            "reference": a["reference"],
            "old": f"{old:%m-%d %H:%M}",
            "reason": reason.get(a["locale"]) or reason.get("zh-Hans") or "",
            "office": sms_office_name(offices[a["office"]], a["locale"]),
        }
        if m.to is not None:
            new = new_slots[m.to.slot_id]["start_at"].astimezone(ctx.timezones[m.to.office_id])
            payload |= {
                "new": f"{new:%m-%d %H:%M}",
                "office": sms_office_name(offices[m.to.office_id], a["locale"]),
            }
        template = "rescheduled" if m.to else "needs_rebooking"
        text = render_sms(template, a["locale"], payload)
        encoded = json.dumps(payload, ensure_ascii=False)
        for p in parties[a["id"]]:
            out.append(
                (
                    f"appointment:{a['id']}:{template}:{ctx.run_id}:{p['role']}",
                    p["phone"],
                    template,
                    a["locale"],
                    encoded,
                    apply_rule(text, terms.rule_for(p["phone"])),
                    "pending",
                    now,
                    0,
                    now,
                    True,
                    validity,
                    False,
                    a["id"],
                )
            )
    return out
