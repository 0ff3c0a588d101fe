"""Seats: the three hard caps, taken and given back with conditional UPDATEs.

Never count-then-insert: a count read before the insert is stale by the time the
insert commits (measured: a capacity-100 slot oversold by 35-61% under 64
clients). Each UPDATE below only succeeds while the cap holds, so the database
itself arbitrates every race. Call these inside ``write_transaction``: when one
cap refuses, the exception rolls back the caps already taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from scheduler.db.tables import Slot
from scheduler.kernel.errors import DomainError


@dataclass(frozen=True)
class Seat:
    slot_id: int
    office_id: int
    day: date
    window_start: datetime
    people: int


async def _bump(sql: str, *args: object) -> bool:
    rows = await Slot.raw(sql, *args)
    return bool(rows)


async def lock_counters(*seats: Seat) -> None:
    """Lock the counter rows of several seats in one global order (slots by id,
    then days, then hall windows) before a move changes any of them.

    A move takes its new seat and gives back its old one; without this, two moves
    in opposite directions (or a move and a booking) lock the same rows in
    opposite orders and PostgreSQL aborts one of them with a deadlock. Holds and
    cancels touch one seat in the same slot, day, window order, so they fit this
    order too. SQLite runs one writer at a time: nothing to order there.
    """
    from scheduler.db.engine import current_engine

    if current_engine().engine_type != "postgres" or len(seats) < 2:
        return
    office_id = seats[0].office_id
    assert all(s.office_id == office_id for s in seats), "a move stays within one office"
    await Slot.raw(
        "SELECT id FROM slot WHERE id = ANY({}) ORDER BY id FOR NO KEY UPDATE",
        sorted({s.slot_id for s in seats}),
    )
    await Slot.raw(
        "SELECT id FROM office_day WHERE office = {} AND day = ANY({})"
        " ORDER BY day FOR NO KEY UPDATE",
        office_id,
        sorted({s.day for s in seats}),
    )
    await Slot.raw(
        "SELECT id FROM onsite_window WHERE office = {} AND window_start = ANY({})"
        " ORDER BY window_start FOR NO KEY UPDATE",
        office_id,
        sorted({s.window_start for s in seats}),
    )


async def take_seat(seat: Seat, *, previous: Seat | None = None) -> None:
    """Take one seat against all three caps or raise the matching 409.

    ``previous`` is the seat being given up by a move: caps it shares with the
    new seat are not counted twice (moving within a full day must not fail).
    """
    if not await _bump(
        "UPDATE slot SET booked = booked + 1 WHERE id = {} AND NOT blocked"
        " AND booked < COALESCE(reduced_capacity, capacity) RETURNING id",
        seat.slot_id,
    ):
        # Only on refusal: tell a blackout (declared maybe a moment ago) from a full slot.
        blocked = await Slot.select(Slot.blocked).where(Slot.id == seat.slot_id).first()
        if blocked and blocked["blocked"]:
            raise DomainError("date-closed", reason="blackout")
        raise DomainError("slot-full")
    same_day = previous is not None and (previous.office_id, previous.day) == (
        seat.office_id,
        seat.day,
    )
    if not same_day and not await _bump(
        "UPDATE office_day SET booked = booked + 1"
        " WHERE office = {} AND day = {} AND booked < capacity RETURNING id",
        seat.office_id,
        seat.day,
    ):
        raise DomainError("day-full")
    same_window = previous is not None and (previous.office_id, previous.window_start) == (
        seat.office_id,
        seat.window_start,
    )
    if not same_window and not await _bump(
        "UPDATE onsite_window SET people = people + {}"
        " WHERE office = {} AND window_start = {} AND people + {} <= capacity RETURNING id",
        seat.people,
        seat.office_id,
        seat.window_start,
        seat.people,
    ):
        raise DomainError("onsite-full")


async def release_seat(seat: Seat, *, keep: Seat | None = None) -> None:
    """Give a seat back; caps shared with ``keep`` (the new seat of a move) stay taken."""
    await Slot.raw("UPDATE slot SET booked = booked - 1 WHERE id = {} AND booked > 0", seat.slot_id)
    if keep is None or (keep.office_id, keep.day) != (seat.office_id, seat.day):
        await Slot.raw(
            "UPDATE office_day SET booked = booked - 1"
            " WHERE office = {} AND day = {} AND booked > 0",
            seat.office_id,
            seat.day,
        )
    if keep is None or (keep.office_id, keep.window_start) != (seat.office_id, seat.window_start):
        await Slot.raw(
            "UPDATE onsite_window SET people = people - {}"
            " WHERE office = {} AND window_start = {} AND people >= {}",
            seat.people,
            seat.office_id,
            seat.window_start,
            seat.people,
        )


# --- unconfirmed holds (issue 13.3) -------------------------------------------------
#
# A first-come hold needs no proof: fabricated couples (ID checksums are easy to
# compute, phone numbers to make up) could hold every seat of a day. So at most
# ``percent`` % of a slot's and of an office-day's seats may be held unconfirmed at
# once; a hold beyond that share takes no seat and waits for both codes, so the
# rest of the seats go only to couples who confirm. Counted like the seats: a
# conditional UPDATE per counter, in the hold's transaction, so the share holds
# under any concurrency.


async def take_seat_in_share(seat: Seat, appointment_id: int, percent: int) -> bool:
    """A new first-come hold: its seat, counted in the unconfirmed share. False when
    the share is full: then no seat is taken and the appointment waits for one
    (``awaiting_seat``) until both partners have confirmed (``take_awaited_seat``).
    Caps that refuse (full slot, day or hall, blackout) raise as ``take_seat`` does."""
    if percent >= 100:
        await take_seat(seat)
        return True
    savepoint = await _savepoint()
    await take_seat(seat)
    if not await _take_hold(seat, appointment_id, percent):
        await savepoint.rollback_to()  # the seat and any counted share back, not the hold
        await Slot.raw("UPDATE appointment SET awaiting_seat = TRUE WHERE id = {}", appointment_id)
        return False
    await savepoint.release()
    return True


async def take_awaited_seat(seat: Seat, appointment_id: int) -> DomainError | None:
    """Both partners of a hold that waited for a seat have confirmed: take it now,
    against all caps. The refusal (``slot-full``, ...) is returned with nothing
    taken, for the caller to end the hold in the same transaction."""
    savepoint = await _savepoint()
    try:
        await take_seat(seat)
    except DomainError as exc:
        await savepoint.rollback_to()
        return exc
    await savepoint.release()
    await Slot.raw("UPDATE appointment SET awaiting_seat = FALSE WHERE id = {}", appointment_id)
    return None


async def _savepoint() -> Any:
    from scheduler.db.engine import current_engine

    transaction = current_engine().current_transaction.get()
    assert transaction is not None, "seats are taken inside write_transaction()"
    return await transaction.savepoint()


async def _take_hold(seat: Seat, appointment_id: int, percent: int) -> bool:
    """Count a new unconfirmed hold against the slot's and the day's share; False if
    either is full (the caller rolls back to before its seat). After ``take_seat``:
    same rows, same lock order."""
    if not await _bump(
        "UPDATE slot SET held = held + 1 WHERE id = {}"
        " AND held * 100 < {} * COALESCE(reduced_capacity, capacity) RETURNING id",
        seat.slot_id,
        percent,
    ):
        return False
    if not await _bump(
        "UPDATE office_day SET held = held + 1"
        " WHERE office = {} AND day = {} AND held * 100 < {} * capacity RETURNING id",
        seat.office_id,
        seat.day,
        percent,
    ):
        return False
    await Slot.raw(
        "UPDATE appointment SET hold_slot = {} WHERE id = {}", seat.slot_id, appointment_id
    )
    return True


async def release_hold(appointment_id: int) -> None:
    """The appointment's hold no longer counts (confirmed, cancelled, expired). Once
    only: the appointment row's ``hold_slot`` is cleared by a conditional UPDATE. A
    hold that moved keeps counting on the slot where it was taken until it ends."""
    counted = await Slot.raw("SELECT hold_slot FROM appointment WHERE id = {}", appointment_id)
    if not counted or counted[0]["hold_slot"] is None:
        return
    slot_id = counted[0]["hold_slot"]
    # RETURNING shows the new (NULL) value: the read above names the slot, and this
    # conditional UPDATE makes sure only one caller gives the count back.
    if not await _bump(
        "UPDATE appointment SET hold_slot = NULL WHERE id = {} AND hold_slot = {} RETURNING id",
        appointment_id,
        slot_id,
    ):
        return
    slot = await Slot.raw(
        "UPDATE slot SET held = held - 1 WHERE id = {} AND held > 0 RETURNING office, day",
        slot_id,
    )
    if slot:
        await Slot.raw(
            "UPDATE office_day SET held = held - 1 WHERE office = {} AND day = {} AND held > 0",
            slot[0]["office"],
            slot[0]["day"],
        )


async def stray_holds(batch: int = 200) -> list[int]:
    """Appointments still counted as unconfirmed holds that left ``pending_confirmation``
    by a path that does not call ``release_hold`` (a blackout's run, a cap's excess
    move): the expiry job releases them, so a count is never stuck."""
    rows = await Slot.raw(
        "SELECT id FROM appointment WHERE hold_slot IS NOT NULL"
        " AND status <> 'pending_confirmation' ORDER BY id LIMIT {}",
        batch,
    )
    return [int(r["id"]) for r in rows]
