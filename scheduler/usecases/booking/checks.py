"""The read-only checks before a booking's write transaction, cheapest refusal first.

In a rush almost every request for a wanted slot is refused ``slot-full``. That
answer comes from the one slot read every booking makes anyway, so it is given
before anything that costs another query (the ban lookup) or a write (the per-ID
and per-phone counters, counted inside the transaction that texts the codes):
measured with bench/rush.py, the lottery and ban queries in front of it had
doubled the server's CPU per refused request (docs/performance.md).

None of these answers is final: they come from a read that may be a moment old.
The conditional UPDATEs of ``capacity.take_seat`` (caps, suspensions and
blackouts via the slot's ``blocked`` mark) and the ID claim insert decide inside
the transaction. A request that gets past these checks has passed every rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scheduler.db import statements
from scheduler.db.fastread import columns, nest
from scheduler.db.records import SlotRecord, slot_of
from scheduler.db.tables import Office, Slot
from scheduler.domain.calendar import last_bookable_day
from scheduler.kernel.errors import DomainError
from scheduler.settings import Settings
from scheduler.usecases.calendar import closures
from scheduler.usecases.calendar.lottery_days import refuse_lottery_date
from scheduler.usecases.policy import bans, policies, rules


def _slot_sql(claims: int = 0, ban: bool = False) -> str:
    """The slot with its office nested, whether the service is offered, whether the
    day may be a lottery date and (with ``claims`` placeholders) whether an ID is
    held already: one raw statement where Piccolo needs several queries and ~4 ms
    of CPU to build the nested select."""
    claimed = (
        f", EXISTS (SELECT 1 FROM id_claim WHERE claim IN ({', '.join(['{}'] * claims)}))"  # noqa: S608
        " AS claimed"
        if claims
        else ""
    )
    cols = columns("s", Slot, skip=("office",)) + columns("o", Office, nested_as="office")
    return (
        "SELECT "  # noqa: S608 - column names come from the table classes
        + ", ".join(cols)
        + ", EXISTS (SELECT 1 FROM office_service os WHERE os.office = s.office"
        " AND os.service = s.service AND os.active) AS offered"
        # Unique (office, day, service): an index probe. Only a hit asks lottery_admin,
        # which owns the rule, so the common day costs no query of its own.
        ", EXISTS (SELECT 1 FROM lottery_office lo WHERE lo.office = s.office"
        " AND lo.day = s.day AND lo.service = s.service) AS lottery"
        + claimed
        # The parties' ban in force, if any (scheduler/usecases/policy/bans.py owns the rule).
        + (f", {bans.ACTIVE_UNTIL_SQL} AS banned_until" if ban else "")
        + " FROM slot s JOIN office o ON o.id = s.office WHERE s.id = {}"
    )


_SLOT_SQL = {(n, ban): _slot_sql(n, ban) for n in (0, 2, 4) for ban in (False, True)}


@dataclass(frozen=True)
class Bookable:
    """A slot a couple may ask for, and the end of a ban of theirs in force (if any),
    read with it and told only after the slot's own answers (``admit_hold``)."""

    slot: SlotRecord
    banned_until: datetime | str | None


async def bookable_slot(
    slot_id: int, service: str, now: datetime, claims: list[str] | None = None
) -> SlotRecord:
    """The slot with its office, if a couple may book it now; else the matching error.
    With ``claims``, also whether one of them is held already (``already-booked``)."""
    return (await _read(slot_id, service, now, claims or [], [])).slot


async def bookable_for(
    slot_id: int,
    service: str,
    now: datetime,
    claims: list[str],
    parties: list[tuple[str, str, str]],
    settings: Settings,
) -> Bookable:
    """``bookable_slot`` for a new hold: the parties' ban read in the same statement."""
    return await _read(slot_id, service, now, claims, bans.ban_hashes(parties, settings))


async def _read(
    slot_id: int, service: str, now: datetime, claims: list[str], ban_hashes: list[str]
) -> Bookable:
    ban_args: list[object] = [*ban_hashes, now] if ban_hashes else []
    sql = _SLOT_SQL[(len(claims), bool(ban_hashes))]
    rows = await statements.fetch(sql, *claims, *ban_args, slot_id)
    if not rows:
        raise DomainError("invalid-input", field="slot_id", reason="unknown-slot")
    row = nest(rows[0])
    slot = slot_of(row)
    office = slot.office
    if not office.active:
        raise DomainError("invalid-input", field="slot_id", reason="unknown-slot")
    if slot.service != service:
        raise DomainError("invalid-input", field="service", reason="service-mismatch")
    if slot.start_at <= now:
        raise DomainError("date-closed", reason="past")
    last_day = last_bookable_day(now, office.tz, office.booking_days_ahead, office.opens_at)
    if slot.day > last_day:
        raise DomainError("booking-not-open")
    if not row["offered"]:
        raise DomainError("service-suspended")
    if row["lottery"]:
        await refuse_lottery_date(slot)  # a lottery date is not first come (issue 7)
    if row.get("claimed", False):
        raise DomainError("already-booked")  # early, friendlier answer; the insert decides
    return Bookable(slot, row.get("banned_until"))


async def admit_hold(
    bookable: Bookable,
    service: str,
    parties: list[tuple[str, str, str]],
    now: datetime,
    settings: Settings,
) -> None:
    """A new hold's checks after the slot read: the ID types the policy accepts and
    the rule set's eligibility and designated offices (in memory; a query only to
    name the offices of a refusal), then the slot's own early answers (suspended or
    blocked, full), then bans (read with the slot). ``parties``: (role, id_type,
    normalised id_number)."""
    slot = bookable.slot
    policies.refuse_id_types(await policies.current(), service, [(r, t) for r, t, _ in parties])
    office = slot.office
    await rules.admit(service, slot.day, parties, now, tz=office.tz, designated=office.designated)
    if slot.blocked:
        raise await closures.blocked_error(office.code, service, slot.day)
    if slot.booked >= slot.cap or _no_place_to_wait(slot, settings):
        raise DomainError("slot-full")
    bans.refuse_until(bookable.banned_until, office.timezone)


def _no_place_to_wait(slot: SlotRecord, settings: Settings) -> bool:
    """The slot's unconfirmed share is full and so are its places for holds that
    wait for a seat (``seats.take_seat_in_share`` decides; this is the early answer
    from the slot read). The day's share is not read here: a full day share with a
    free slot share is left to the transaction."""
    percent = settings.hold_unconfirmed_percent
    if percent >= 100 or slot.held * 100 < percent * slot.cap:
        return False
    return slot.waiting >= settings.hold_waiting_per_free_seat * (slot.cap - slot.booked)
