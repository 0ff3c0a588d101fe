"""Seats: the ONE writer of the seat counters and of the caps they are held to.

Every write of ``slot.booked``/``held``/``waiting``, ``office_day.booked``/``held``,
``onsite_window.people`` and ``hall_count.people``, every change of a cap
(``capacity`` of slots, days and hall windows; a blackout's ``blocked`` and
``reduced_capacity`` marks, which are the slot's effective cap) and the creation of
the counter rows happens here (tests/test_seat_writer.py fails if another module
writes them). Use cases decide *what* to take; this module is the promise that no
cap is ever exceeded.

The day's cap is kept by its ``office_day`` row only where the slot caps alone do
not keep it (issue 16): each slot row carries the day's proofs (``day_covered``,
``share_covered``, scheduler/domain/day_cover.py), read as the RETURNING of the
booking's own conditional UPDATE of its slot (the row version it locked, so a proof
withdrawn by a concurrent cap change is seen). On a covered day ``office_day.booked``
(``held``) is not maintained: the day's counts are the sums over its slot rows, which
every reader uses. Whoever can break a proof (a cap, a new slot or day, a blackout
mark) works it out again here, in ``_prove_days``, with every slot row of the day
locked, and recounts the day row when it becomes the enforcer again.

Never count-then-insert: a count read before the insert is stale by the time the
insert commits (measured: a capacity-100 slot oversold by 35-61% under 64
clients). Each UPDATE below only succeeds while the cap holds, so the database
itself arbitrates every race. Call these inside ``write_transaction``: when one
cap refuses, the exception rolls back the caps already taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NoReturn

from piccolo.custom_types import Combinable
from piccolo.query.functions.aggregate import Sum
from piccolo.table import Table

from scheduler.db import full_marks, statements
from scheduler.db.queue_tables import HallCount
from scheduler.db.tables import OfficeDay, OnsiteWindow, Slot
from scheduler.domain.day_cover import SlotBound, day_covered, share_threshold
from scheduler.kernel.errors import DomainError


@dataclass(frozen=True)
class Seat:
    slot_id: int
    office_id: int
    day: date
    window_start: datetime
    people: int


async def _bump(sql: str, *args: object) -> bool:
    rows = await statements.fetch(sql, *args)
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
    taken = await statements.fetch(
        "UPDATE slot SET booked = booked + 1 WHERE id = {} AND NOT blocked"
        " AND booked < COALESCE(reduced_capacity, capacity) RETURNING day_covered",
        seat.slot_id,
    )
    if not taken:
        await _refuse_slot(seat)
    await _take_day_and_hall(seat, bool(taken[0]["day_covered"]), previous)


async def _refuse_slot(seat: Seat) -> NoReturn:
    """Only on refusal: tell a blackout (declared maybe a moment ago) from a full slot."""
    blocked = await Slot.select(Slot.blocked).where(Slot.id == seat.slot_id).first()
    if blocked and blocked["blocked"]:
        raise DomainError("date-closed", reason="blackout")
    raise DomainError("slot-full")


async def _take_day_and_hall(seat: Seat, covered: bool, previous: Seat | None = None) -> None:
    """The rest of a seat after its slot's: the day (unless the slot caps keep it) and
    the hall window; the matching 409 if either is full."""
    same_day = previous is not None and (previous.office_id, previous.day) == (
        seat.office_id,
        seat.day,
    )
    # The slot caps keep the day's: its row is not taken (nor its lock waited for).
    if not same_day and not covered and not await _bump(
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
    full_marks.clear(seat.slot_id)
    given = await statements.fetch(
        "UPDATE slot SET booked = CASE WHEN booked > 0 THEN booked - 1 ELSE 0 END"
        " WHERE id = {} RETURNING day_covered",
        seat.slot_id,
    )
    covered = bool(given and given[0]["day_covered"])
    if not covered and (keep is None or (keep.office_id, keep.day) != (seat.office_id, seat.day)):
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


async def take_seat_in_share(
    seat: Seat, appointment_id: int, percent: int, waiting_per_free_seat: int
) -> bool:
    """A new first-come hold: its seat, counted in the unconfirmed share. False when
    the share is full: then no seat is taken and the appointment waits for one
    (``awaiting_seat``) until both partners have confirmed (``take_awaited_seat``),
    counted in the slot's ``waiting`` (``_take_wait``); ``slot-full`` when the slot
    has as many waiting holds as it may (nothing of the hold may then be kept).
    Caps that refuse (full slot, day or hall, blackout) raise as ``take_seat`` does."""
    if percent >= 100:
        await take_seat(seat)
        return True
    # The seat and a place in the slot's share in one statement: in a rush's common
    # case a hold writes the slot row and the hall window, nothing more (issue 16).
    taken = await statements.fetch(
        "UPDATE slot SET booked = booked + 1, held = held + 1 WHERE id = {} AND NOT blocked"
        " AND booked < COALESCE(reduced_capacity, capacity)"
        " AND held * 100 < {} * COALESCE(reduced_capacity, capacity)"
        " RETURNING day_covered, share_covered",
        seat.slot_id,
        percent,
    )
    if not taken:
        await _take_wait(seat, appointment_id, waiting_per_free_seat)
        return False
    await _take_day_and_hall(seat, bool(taken[0]["day_covered"]))
    if await _take_day_share(seat, appointment_id, percent, taken[0]["share_covered"]):
        return True
    # The day's share is full: this transaction's own takings given back (it holds
    # those rows: exact, no savepoint), and the hold waits.
    await release_seat(seat)
    await statements.fetch("UPDATE slot SET held = held - 1 WHERE id = {}", seat.slot_id)
    await _take_wait(seat, appointment_id, waiting_per_free_seat)
    return False


async def _take_wait(seat: Seat, appointment_id: int, per_free_seat: int) -> None:
    """Count a hold beyond the share among the slot's waiting holds, or raise
    ``slot-full`` (or ``date-closed`` for a blocked slot). At most ``per_free_seat``
    waiting holds per seat not yet taken: each one costs two code texts, and more
    waiting couples than seats would mostly learn at confirmation that the slot
    filled. ``booked`` does not count this hold's seat (none was taken, or it was given
    back). A day or hall already full refuses it too (read, not locked: the seat is
    taken, against every cap, only when both partners confirm)."""
    waiting = await statements.fetch(
        "UPDATE slot SET waiting = waiting + 1 WHERE id = {} AND NOT blocked"
        " AND waiting + 1 <= {} * (COALESCE(reduced_capacity, capacity) - booked)"
        " RETURNING day_covered",
        seat.slot_id,
        per_free_seat,
    )
    if not waiting:
        await _refuse_slot(seat)
    if not waiting[0]["day_covered"] and not await statements.fetch(
        "SELECT id FROM office_day WHERE office = {} AND day = {} AND booked < capacity",
        seat.office_id,
        seat.day,
    ):
        raise DomainError("day-full")
    if not await statements.fetch(
        "SELECT id FROM onsite_window WHERE office = {} AND window_start = {}"
        " AND people + {} <= capacity",
        seat.office_id,
        seat.window_start,
        seat.people,
    ):
        raise DomainError("onsite-full")
    await statements.fetch(
        "UPDATE appointment SET awaiting_seat = TRUE, wait_slot = {} WHERE id = {}",
        seat.slot_id,
        appointment_id,
    )


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
    await _release_wait(appointment_id)  # seated: its waiting place goes to the next couple
    return None


async def _savepoint() -> Any:
    from scheduler.db.engine import current_engine

    transaction = current_engine().current_transaction.get()
    assert transaction is not None, "seats are taken inside write_transaction()"
    return await transaction.savepoint()


async def _take_day_share(
    seat: Seat, appointment_id: int, percent: int, proven: int | None
) -> bool:
    """Count a new unconfirmed hold, already counted in its slot's share, against the
    day's; False if that is full (the caller gives the slot's back). The day's share is
    not counted where the slot shares keep it for this ``percent`` (``proven``, the
    slot's ``share_covered``); below the proven percent its counter is not kept
    either: the day's holds are counted from its slots."""
    if proven is not None and percent < proven and not await _day_share_counted(seat, percent):
        return False
    if proven is None and not await _bump(
        "UPDATE office_day SET held = held + 1"
        " WHERE office = {} AND day = {} AND held * 100 < {} * capacity RETURNING id",
        seat.office_id,
        seat.day,
        percent,
    ):
        return False
    await statements.fetch(
        "UPDATE appointment SET hold_slot = {} WHERE id = {}", seat.slot_id, appointment_id
    )
    return True


async def _day_share_counted(seat: Seat, percent: int) -> bool:
    """Whether the day's share admits this hold (already counted on its slot) where
    the slot shares do not keep it and the day row does not count it (a share below
    the proven one): the day's holds summed over its slots under the day row's lock,
    so two such holds decide one after the other, each seeing the other's commit."""
    from scheduler.db.engine import current_engine

    if current_engine().engine_type == "postgres":
        await Slot.raw(
            "SELECT id FROM office_day WHERE office = {} AND day = {} FOR NO KEY UPDATE",
            seat.office_id,
            seat.day,
        )
    rows = await Slot.raw(
        "SELECT capacity, (SELECT SUM(held) FROM slot WHERE office = {} AND day = {}) AS held"
        " FROM office_day WHERE office = {} AND day = {}",
        seat.office_id,
        seat.day,
        seat.office_id,
        seat.day,
    )
    return bool(rows) and (int(rows[0]["held"]) - 1) * 100 < percent * rows[0]["capacity"]


async def release_hold(appointment_id: int) -> None:
    """The appointment's hold no longer counts (confirmed, cancelled, expired), in the
    share or among the slot's waiting holds. Once only: the appointment row's
    ``hold_slot`` (``wait_slot``) is cleared by a conditional UPDATE. A hold that
    moved keeps counting on the slot where it was taken until it ends."""
    counted = await Slot.raw(
        "SELECT hold_slot, wait_slot FROM appointment WHERE id = {}", appointment_id
    )
    if counted and counted[0]["wait_slot"] is not None:
        await _release_wait(appointment_id, counted[0]["wait_slot"])
    if not counted or counted[0]["hold_slot"] is None:
        return
    slot_id = counted[0]["hold_slot"]
    full_marks.clear(slot_id)  # a place in the share opens
    # RETURNING shows the new (NULL) value: the read above names the slot, and this
    # conditional UPDATE makes sure only one caller gives the count back.
    if not await _bump(
        "UPDATE appointment SET hold_slot = NULL WHERE id = {} AND hold_slot = {} RETURNING id",
        appointment_id,
        slot_id,
    ):
        return
    slot = await statements.fetch(
        "UPDATE slot SET held = held - 1 WHERE id = {} AND held > 0"
        " RETURNING office, day, share_covered",
        slot_id,
    )
    if slot and slot[0]["share_covered"] is None:
        await Slot.raw(
            "UPDATE office_day SET held = held - 1 WHERE office = {} AND day = {} AND held > 0",
            slot[0]["office"],
            slot[0]["day"],
        )


async def _release_wait(appointment_id: int, slot_id: int | None = None) -> None:
    """The appointment no longer waits for a seat (seated or ended): its place among
    the slot's waiting holds goes back, once, by a conditional UPDATE of ``wait_slot``."""
    if slot_id is None:
        rows = await Slot.raw("SELECT wait_slot FROM appointment WHERE id = {}", appointment_id)
        if not rows or rows[0]["wait_slot"] is None:
            return
        slot_id = rows[0]["wait_slot"]
    full_marks.clear(slot_id)
    if await _bump(
        "UPDATE appointment SET wait_slot = NULL WHERE id = {} AND wait_slot = {} RETURNING id",
        appointment_id,
        slot_id,
    ):
        await Slot.raw(
            "UPDATE slot SET waiting = waiting - 1 WHERE id = {} AND waiting > 0", slot_id
        )


async def stray_holds(batch: int = 200) -> list[int]:
    """Appointments still counted as unconfirmed or waiting holds that left
    ``pending_confirmation`` by a path that does not call ``release_hold`` (a
    blackout's run, a cap's excess move): the expiry job releases them, so a count
    is never stuck."""
    rows = await Slot.raw(
        "SELECT id FROM appointment WHERE (hold_slot IS NOT NULL OR wait_slot IS NOT NULL)"
        " AND status <> 'pending_confirmation' ORDER BY id LIMIT {}",
        batch,
    )
    return [int(r["id"]) for r in rows]


# --- many seats at once: lottery winners, reschedule runs, a lowered cap's excess ---


class CountersChanged(Exception):
    """A conditional UPDATE of a batch came back short: a counter changed under it
    (a booking took a planned seat). The caller rolls back and plans again."""


async def take_counts(
    slots: Mapping[int, int],
    days: Mapping[tuple[int, date], int],
    windows: Mapping[tuple[int, datetime], int],
) -> None:
    """Take ``n`` seats per slot, per (office, day) and ``n`` people per (office,
    hall window), each all-or-nothing against its cap, in the global lock order
    (slots by id, days, hall windows). Raises ``CountersChanged`` naming the row
    that refused; the caller's transaction gives back what was taken. A day whose
    slot caps keep it (``day_covered`` on the slot rows just taken) is not counted."""
    covered: set[tuple[int, date]] = set()
    for slot_id, k in sorted(slots.items()):
        taken = await Slot.raw(
            "UPDATE slot SET booked = booked + {} WHERE id = {} AND NOT blocked"
            " AND booked + {} <= COALESCE(reduced_capacity, capacity)"
            " RETURNING office, day, day_covered",
            k,
            slot_id,
            k,
        )
        if not taken:
            raise CountersChanged(f"slot {slot_id}")
        if taken[0]["day_covered"]:
            covered.add((taken[0]["office"], taken[0]["day"]))
    for (office_id, day), k in sorted(days.items()):
        if (office_id, day) in covered:
            continue
        if not await _bump(
            "UPDATE office_day SET booked = booked + {} WHERE office = {} AND day = {}"
            " AND booked + {} <= capacity RETURNING id",
            k,
            office_id,
            day,
            k,
        ):
            raise CountersChanged(f"office day {office_id}")
    for (office_id, window), k in sorted(windows.items()):
        if not await _bump(
            "UPDATE onsite_window SET people = people + {} WHERE office = {} AND window_start = {}"
            " AND people + {} <= capacity RETURNING id",
            k,
            office_id,
            window,
            k,
        ):
            raise CountersChanged(f"hall window {office_id}")


def _values(rows: Sequence[tuple[int, ...]]) -> tuple[str, list[int]]:
    """A VALUES list of integer tuples with its parameters (typed for PostgreSQL)."""
    width = len(rows[0])
    one = "(" + ", ".join(["CAST({} AS INTEGER)"] * width) + ")"
    return ", ".join([one] * len(rows)), [v for row in rows for v in row]


# (table, counter column, cap expression, extra condition on a taken seat)
_NET_COUNTERS = {
    "slot": ("booked", "COALESCE(slot.reduced_capacity, slot.capacity)", " AND NOT slot.blocked"),
    "office_day": ("booked", "office_day.capacity", ""),
    "onsite_window": ("people", "onsite_window.capacity", ""),
}


async def apply_net_changes(
    slots: Mapping[int, int], days: Mapping[int, int], windows: Mapping[int, int]
) -> None:
    """Net changes of many moves at once, by row id (slot, office_day, onsite_window):
    one set-based UPDATE per table and direction, so a run of thousands of moves
    costs a few statements. Increments only where the cap still holds, else
    ``CountersChanged``; decrements always apply. Days whose slot caps keep them
    (``day_covered`` on the slot rows changed, which every day with a net change has)
    are left alone."""
    full_marks.clear_all()
    covered: set[tuple[int, date]] = set()
    for table, changes in (("slot", slots), ("office_day", days), ("onsite_window", windows)):
        column, cap, extra = _NET_COUNTERS[table]
        if table == "office_day":
            changes = await _uncovered_days(changes, covered)
        returning = " RETURNING slot.office, slot.day, slot.day_covered" if table == "slot" else ""
        ups = [(k, n) for k, n in changes.items() if n > 0]
        downs = [(k, -n) for k, n in changes.items() if n < 0]
        if ups:
            values, args = _values(ups)
            # Table and column names are this module's constants; values are parameters.
            sql = (
                f"WITH v(id, n) AS (VALUES {values})"  # noqa: S608
                f" UPDATE {table} SET {column} = {table}.{column} + v.n FROM v"
                f" WHERE {table}.id = v.id AND {table}.{column} + v.n <= {cap}{extra}"
                f" RETURNING {table}.id{returning.replace(' RETURNING', ',')}"
            )
            done = await Slot.raw(sql, *args)
            if len(done) != len(ups):
                raise CountersChanged(table)
            covered.update((r["office"], r["day"]) for r in done if returning and r["day_covered"])
        if downs:
            values, args = _values(downs)
            sql = (
                f"WITH v(id, n) AS (VALUES {values})"  # noqa: S608
                f" UPDATE {table} SET {column} = {table}.{column} - v.n FROM v"
                f" WHERE {table}.id = v.id{returning}"
            )
            done = await Slot.raw(sql, *args)
            covered.update((r["office"], r["day"]) for r in done if returning and r["day_covered"])


async def _uncovered_days(
    days: Mapping[int, int], covered: set[tuple[int, date]]
) -> dict[int, int]:
    """The changes of the office_day rows (by id) whose day is not in ``covered``."""
    if not days or not covered:
        return dict(days)
    rows = await Slot.raw(
        "SELECT id, office, day FROM office_day WHERE id IN ("  # noqa: S608
        + ", ".join(str(int(k)) for k in days)
        + ")"
    )
    skip = {r["id"] for r in rows if (r["office"], r["day"]) in covered}
    return {k: n for k, n in days.items() if k not in skip}


# --- the hall at check-in -------------------------------------------------------------


async def take_hall(office_id: int, day: date, people: int, cap: int) -> bool:
    """``people`` more in the waiting hall of the office's day, if that stays within
    ``cap``; False when the hall is full (nothing taken)."""
    await HallCount.insert(HallCount(office=office_id, day=day, people=0)).on_conflict(
        action="DO NOTHING"
    )
    return await _bump(
        "UPDATE hall_count SET people = people + {} WHERE office = {} AND day = {}"
        " AND people + {} <= {} RETURNING id",
        people,
        office_id,
        day,
        people,
        cap,
    )


async def free_hall(office_id: int, day: date, people: int) -> None:
    """``people`` left the hall (served, missed, sent back)."""
    await HallCount.raw(
        "UPDATE hall_count SET people = people - {}"
        " WHERE office = {} AND day = {} AND people >= {}",
        people,
        office_id,
        day,
        people,
    )


# --- the caps themselves: generated rows, capacity changes, blackout marks -----------


async def add_rows(rows: Sequence[Table]) -> None:
    """Insert newly generated slots, office days or hall windows (all of one table; counters
    start at the column default, 0). Rows that exist already, with their counters,
    are left alone. New slots or a new day row change the day's proofs."""
    if rows:
        assert type(rows[0]) in (Slot, OfficeDay, OnsiteWindow), type(rows[0])
        await type(rows[0]).insert(*rows).on_conflict(action="DO NOTHING")
        if type(rows[0]) is not OnsiteWindow:
            days = {(_id(getattr(r, "office")), getattr(r, "day")) for r in rows}  # noqa: B009 (mypy: Table)
            await _lock_days(days)
            await _prove_days(days)


def _id(value: Any) -> int:
    return int(getattr(value, "id", value))


async def set_slot_capacity(where: Combinable, cap: int) -> None:
    """A new cap for the slots ``where`` selects. The caller checks, after this and
    in the same transaction, that no slot now holds more than ``cap`` (from here on
    the rows are this transaction's: PostgreSQL row locks, SQLite one writer, so a
    booking racing the change is either counted by that check or meets the new cap)."""
    full_marks.clear_all()
    days = {
        (r["office"], r["day"])
        for r in await Slot.select(Slot.office, Slot.day).where(where).distinct()
    }
    await _lock_days(days)
    await Slot.update({Slot.capacity: cap}).where(where)
    await _prove_days(days)


async def set_day_capacity(office_id: int, first_day: date, cap: int) -> None:
    """A new day cap for the office's days from ``first_day`` on (checked by the
    caller after, as ``set_slot_capacity``, against the day's true count: the sum
    over its slots, ``day_booked``)."""
    full_marks.clear_all()
    days = {
        (office_id, r["day"])
        for r in await Slot.select(Slot.day)
        .where((Slot.office == office_id) & (Slot.day >= first_day))
        .distinct()
    }
    await _lock_days(days)
    await OfficeDay.update({OfficeDay.capacity: cap}).where(
        (OfficeDay.office == office_id) & (OfficeDay.day >= first_day)
    )
    await _prove_days(days)


async def set_window_capacity(office_id: int, first_window: datetime, cap: int) -> None:
    """A new on-site cap for the office's hall windows from ``first_window`` on (hall
    windows are always kept by their own row: no proof to work out)."""
    full_marks.clear_all()
    await OnsiteWindow.update({OnsiteWindow.capacity: cap}).where(
        (OnsiteWindow.office == office_id) & (OnsiteWindow.window_start >= first_window)
    )


async def mark_slots(marks: Mapping[tuple[bool, int | None], Sequence[int]]) -> None:
    """Blackout marks by (blocked, reduced capacity) -> slot ids: a blocked slot takes
    no seat, a reduced one takes seats up to its lower cap (a "discouraged" day).
    Seats already taken stay (the blackout's run moves them)."""
    full_marks.clear_all()
    ids = [i for group in marks.values() for i in group]
    days: set[tuple[int, date]] = set()
    for i in range(0, len(ids), 500):
        days |= {
            (r["office"], r["day"])
            for r in await Slot.select(Slot.office, Slot.day)
            .where(Slot.id.is_in(ids[i : i + 500]))
            .distinct()
        }
    await _lock_days(days)
    for (blocked, reduced), group in marks.items():
        await Slot.update({Slot.blocked: blocked, Slot.reduced_capacity: reduced}).where(
            Slot.id.is_in(list(group))
        )
    await _prove_days(days)


# --- the day's proofs (issue 16) --------------------------------------------------------


def _days_filter(days: set[tuple[int, date]]) -> tuple[str, list[Any]]:
    """``(office = {} AND day IN ({}, ...)) OR ...``, its parameters."""
    by_office: dict[int, list[date]] = {}
    for office_id, day in days:
        by_office.setdefault(office_id, []).append(day)
    clauses, args = [], []
    for office_id, office_days in sorted(by_office.items()):
        clauses.append(f"(office = {{}} AND day IN ({', '.join(['{}'] * len(office_days))}))")
        args += [office_id, *sorted(office_days)]
    return "(" + " OR ".join(clauses) + ")", args


async def _lock_days(days: set[tuple[int, date]]) -> None:
    """Lock every slot row of these days (by id, the global order), then their day
    rows, before a change of their caps. Each covered booking holds its slot row to
    COMMIT, so this waits for every one in flight, and every later one waits for
    this transaction and then reads the proofs it leaves. SQLite runs one writer."""
    from scheduler.db.engine import current_engine

    engine = current_engine()
    if not days or engine.engine_type != "postgres":
        return
    # Outside a transaction each statement would let its locks go at once.
    assert engine.current_transaction.get() is not None, "caps change in write_transaction()"
    where, args = _days_filter(days)
    await Slot.raw(f"SELECT id FROM slot WHERE {where} ORDER BY id FOR NO KEY UPDATE", *args)  # noqa: S608
    await Slot.raw(
        f"SELECT id FROM office_day WHERE {where} ORDER BY office, day FOR NO KEY UPDATE",  # noqa: S608
        *args,
    )


async def _prove_days(days: set[tuple[int, date]]) -> None:
    """Work the days' proofs out again from their committed rows (locked by
    ``_lock_days``) and write them on every slot of the day; where a day's row keeps
    a cap again (not covered), its counter is recounted from the slots first, so it
    is right before any "cap below bookings" check and before the next booking."""
    if not days:
        return
    where, args = _days_filter(days)
    slots: dict[tuple[int, date], list[SlotBound]] = {}
    flags: dict[tuple[int, date], set[tuple[bool, int | None]]] = {}
    sums: dict[tuple[int, date], tuple[int, int]] = {}
    for s in await Slot.raw(
        "SELECT office, day, capacity, reduced_capacity, booked, held, day_covered,"  # noqa: S608
        f" share_covered FROM slot WHERE {where}",
        *args,
    ):
        key = (s["office"], s["day"])
        cap = max(s["capacity"], s["reduced_capacity"] or 0)
        slots.setdefault(key, []).append(SlotBound(max(s["booked"], cap), s["held"], cap))
        flags.setdefault(key, set()).add((bool(s["day_covered"]), s["share_covered"]))
        booked, held = sums.get(key, (0, 0))
        sums[key] = (booked + s["booked"], held + s["held"])
    for d in await Slot.raw(
        f"SELECT id, office, day, capacity, booked, held FROM office_day WHERE {where}",  # noqa: S608
        *args,
    ):
        key = (d["office"], d["day"])
        if key not in slots:
            continue
        covered = day_covered(d["capacity"], slots[key])
        share = share_threshold(d["capacity"], slots[key])
        booked, held = sums[key]
        # The counters a row keeps again: the true counts, while every slot is locked.
        if (not covered and d["booked"] != booked) or (share is None and d["held"] != held):
            await Slot.raw(
                "UPDATE office_day SET booked = {}, held = {} WHERE id = {}",
                booked if not covered else d["booked"],
                held if share is None else d["held"],
                d["id"],
            )
        if flags[key] != {(covered, share)}:
            await Slot.raw(
                "UPDATE slot SET day_covered = {}, share_covered = {}"
                " WHERE office = {} AND day = {}",
                covered,
                share,
                d["office"],
                d["day"],
            )
        del slots[key]
    # Slots of a day without its row: no day cap to prove (a booking there is refused).
    for office_id, day in slots:
        if flags[(office_id, day)] != {(False, None)}:
            await Slot.raw(
                "UPDATE slot SET day_covered = {}, share_covered = NULL"
                " WHERE office = {} AND day = {}",
                False,
                office_id,
                day,
            )


async def day_booked(office_ids: list[int], first_day: date) -> dict[tuple[int, date], int]:
    """Seats taken per (office, day) from ``first_day`` on: the sums over the day's
    slots, which are the day's count whether or not its row keeps it (read it in the
    deciding transaction where a write depends on it)."""
    rows = (
        await Slot.select(Slot.office, Slot.day, Sum(Slot.booked).as_alias("booked"))
        .where(Slot.office.is_in(office_ids or [-1]) & (Slot.day >= first_day))
        .group_by(Slot.office, Slot.day)
    )
    return {(r["office"], r["day"]): int(r["booked"] or 0) for r in rows}
