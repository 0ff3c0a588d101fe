"""The no-show job (issue 4.8): confirmed appointments nobody checked in for by the
end of the late check-in window become ``no_show``; then every new strike (no-show,
cancellation by the couple, a ticket the queue marked missed) is evaluated against
the no-show rule, which may write a ban (scheduler/usecases/policy/bans.py).

Safe in several processes at once: the status change is a conditional UPDATE (a
check-in or another process that got there first wins, and only the winner writes
the event), and a ban's unique key makes a strike evaluated twice one ban.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.db.engine import write_transaction
from scheduler.db.policy_tables import StrikeCursor
from scheduler.db.tables import Appointment, AppointmentEvent, IdClaim, Party
from scheduler.settings import Settings
from scheduler.usecases.policy import bans

BATCH = 200
CURSOR = "strikes"
SETTLE = timedelta(seconds=60)
# Event kinds that may be a strike: ours, the queue's "missed" action, a cancellation.
STRIKE_EVENTS = ("no_show", "no-show", "cancelled")

_DUE_SQL = (
    "SELECT a.id FROM appointment a JOIN slot s ON s.id = a.slot"
    " WHERE a.status = 'confirmed' AND s.start_at < {} ORDER BY s.start_at, a.id LIMIT {}"
)


async def mark_no_shows(now: datetime, settings: Settings) -> list[int]:
    """Mark the late, unchecked, confirmed appointments; returns those this call marked."""
    cutoff = now - timedelta(minutes=settings.checkin_late_minutes)
    marked: list[int] = []
    while True:
        due = [r["id"] for r in await Appointment.raw(_DUE_SQL, cutoff, BATCH)]
        if not due:
            return marked
        async with write_transaction():
            won = await (
                Appointment.update({Appointment.status: "no_show"})
                .where(Appointment.id.is_in(due) & (Appointment.status == "confirmed"))
                .returning(Appointment.id)
            )
            ids = [r["id"] for r in won]
            if ids:
                await AppointmentEvent.insert(
                    *[
                        AppointmentEvent(appointment=i, kind="no_show", actor="system", at=now)
                        for i in ids
                    ]
                )
                # The appointment is over: its ID numbers may book again (bans aside).
                await IdClaim.delete().where(IdClaim.appointment.is_in(ids))
        marked += ids
        if len(due) < BATCH:
            return marked


async def _hashes(appointments: list[int]) -> list[str]:
    rows = await Party.select(Party.id_hash).where(Party.appointment.is_in(appointments or [-1]))
    return sorted({p["id_hash"] for p in rows if p["id_hash"]})


async def evaluate(appointments: list[int], now: datetime) -> int:
    """Evaluate every partner of these appointments; returns the bans written."""
    written = 0
    for id_hash in await _hashes(appointments):
        async with write_transaction():
            if await bans.evaluate(id_hash, now) is not None:
                written += 1
    return written


async def evaluate_strikes(now: datetime, *, batch: int = 500) -> int:
    """Evaluate the people of every strike event since the last run; returns bans written.

    Only events at least SETTLE old are read, and reading stops at the first younger
    one: event ids are drawn before commit, so a younger id may still be uncommitted
    behind an older one, and the cursor must not pass it."""
    await StrikeCursor.insert(StrikeCursor(name=CURSOR, last_event=0)).on_conflict(
        action="DO NOTHING"
    )
    written = 0
    while True:
        row = (
            await StrikeCursor.select(StrikeCursor.last_event)
            .where(StrikeCursor.name == CURSOR)
            .first()
        )
        start = row["last_event"] if row else 0
        found = await (
            AppointmentEvent.select(
                AppointmentEvent.id, AppointmentEvent.appointment, AppointmentEvent.at
            )
            .where((AppointmentEvent.id > start) & AppointmentEvent.kind.is_in(list(STRIKE_EVENTS)))
            .order_by(AppointmentEvent.id)
            .limit(batch)
        )
        events = []
        for event in found:
            if event["at"] > now - SETTLE:
                break
            events.append(event)
        if not events:
            return written
        written += await evaluate(sorted({e["appointment"] for e in events}), now)
        last = events[-1]["id"]
        async with write_transaction():
            # Never backwards: a slower process finishing an older batch keeps the cursor.
            await StrikeCursor.update({StrikeCursor.last_event: last}).where(
                (StrikeCursor.name == CURSOR) & (StrikeCursor.last_event < last)
            )
        if len(events) < batch:
            return written


async def run(now: datetime, settings: Settings) -> dict[str, int] | None:
    """The job: mark, then evaluate. Returns counts worth logging, or None."""
    marked = await mark_no_shows(now, settings)
    # This run's own no-shows at once; everything else once settled (the cursor).
    banned = await evaluate(marked, now) + await evaluate_strikes(now)
    return {"marked": len(marked), "banned": banned} if marked or banned else None
