"""Pure rules of the waiting list: what a couple may ask for, which free seat fits
whom, and who is next. No I/O; ``now`` is passed in.

Join order is the moment both partners verified their phones (ties: entry id), so
an entry whose codes arrive late does not jump ahead of couples already waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

MAX_OFFICES = 3
# Statuses of an entry that still holds its place (and its per-date ID claim).
ACTIVE = ("pending", "waiting", "offered")
# After an offer: the appointment's status decides what became of the entry.
LAPSED_APPOINTMENT = ("expired", "cancelled")


class InvalidRequest(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Preference:
    offices: tuple[int, ...]  # office ids, most wanted first
    time_from: time | None = None
    time_to: time | None = None

    def fits(self, office_id: int, local_start: time) -> bool:
        if office_id not in self.offices:
            return False
        if self.time_from is None or self.time_to is None:
            return True
        return self.time_from <= local_start < self.time_to


@dataclass(frozen=True)
class FreeSlot:
    id: int
    office_id: int
    start_at: datetime  # UTC
    local_start: time


@dataclass(frozen=True)
class Waiting:
    entry_id: int
    preference: Preference


def parse_time_range(time_from: str | None, time_to: str | None) -> tuple[time, time] | None:
    """Both bounds ("HH:MM", start inclusive, end exclusive) or neither (any time)."""
    if time_from is None and time_to is None:
        return None
    if time_from is None or time_to is None:
        raise InvalidRequest("time_to" if time_to is None else "time_from", "time-range")
    try:
        start = time.fromisoformat(time_from)
        end = time.fromisoformat(time_to)
    except ValueError as exc:
        raise InvalidRequest("time_from", "time-range") from exc
    if len(time_from) != 5 or len(time_to) != 5 or start >= end:
        raise InvalidRequest("time_from", "time-range")
    return start, end


def check_offices(codes: Sequence[str]) -> tuple[str, ...]:
    """1 to MAX_OFFICES distinct office codes, order kept."""
    if not 1 <= len(codes) <= MAX_OFFICES or len(set(codes)) != len(codes):
        raise InvalidRequest("offices", "offices")
    return tuple(codes)


def check_day(day: date, today: date, last_bookable: date) -> None:
    """A couple may wait for a day from tomorrow up to the last day open for booking."""
    if day <= today:
        raise InvalidRequest("date", "date-past")
    if day > last_bookable:
        raise InvalidRequest("date", "date-not-open")


def offerable(slot: FreeSlot, now: datetime, offer_minutes: int) -> bool:
    """Only a slot that starts after the offer would lapse: the couple must be able
    to confirm and still come."""
    return slot.start_at > now + timedelta(minutes=offer_minutes)


def choose_slot(preference: Preference, free: Iterable[FreeSlot]) -> FreeSlot | None:
    """The seat to offer: the couple's most wanted office first, then the earliest time."""
    fitting = [s for s in free if preference.fits(s.office_id, s.local_start)]
    if not fitting:
        return None
    return min(fitting, key=lambda s: (preference.offices.index(s.office_id), s.start_at, s.id))


def next_offer(
    waiting: Iterable[Waiting], free: Sequence[FreeSlot], now: datetime, offer_minutes: int
) -> tuple[Waiting, FreeSlot] | None:
    """The first couple in join order (``waiting`` is in that order) that one of the
    free seats fits, and that seat."""
    usable = [s for s in free if offerable(s, now, offer_minutes)]
    if not usable:
        return None
    for entry in waiting:
        slot = choose_slot(entry.preference, usable)
        if slot is not None:
            return entry, slot
    return None


def outcome_of_offer(appointment_status: str) -> str | None:
    """What an offered entry becomes once its appointment settled: ``booked``, or
    ``lapsed`` (dropped from the list: see docs/decisions.md), or None while pending."""
    if appointment_status == "pending_confirmation":
        return None
    if appointment_status in LAPSED_APPOINTMENT:
        return "lapsed"
    # Confirmed, and whatever a confirmed appointment becomes later (checked in,
    # moved by a blackout...): the couple has their seat.
    return "booked"
