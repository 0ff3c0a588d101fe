"""Blackout rules and the placement of moved appointments. Pure: no I/O, no clock.

Placement: each affected couple goes to the nearest fitting slot — the same
office and service, the same time of day if possible, then the nearest day
(a later day before an earlier one at equal distance: paperwork for an earlier
date may not be ready), never into a blocked slot, never past a cap, never onto
an excluded day (a lottery date), optionally to another office of the region
when the blackout allows it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, time

KINDS = ("closed", "no_new_bookings", "discouraged")
# Services a couple may be moved to another office for: since 2025-05-10 a marriage
# may be registered at any registry office in the country (全国通办, Marriage
# Registration Regulations as revised by State Council Order No. 804), and parties
# who need a designated office only at one (scheduler/domain/rules.py); a ceremony
# hall or counsellor is not interchangeable.
MOVABLE_ACROSS_OFFICES = frozenset({"marriage"})


@dataclass(frozen=True)
class Rule:
    kind: str
    start_date: date
    end_date: date
    start_time: time | None = None
    end_time: time | None = None
    services: frozenset[str] = frozenset()
    cap_percent: int = 50

    def covers(self, service: str, day: date, start: time, end: time) -> bool:
        """Does this rule apply to a slot of ``service`` on local ``day``, ``start``-``end``?"""
        if not self.start_date <= day <= self.end_date:
            return False
        if self.services and service not in self.services:
            return False
        if self.start_time is not None and self.end_time is not None:
            return start < self.end_time and end > self.start_time
        return True


def problems(rule: Rule, today: date, max_days: int = 366) -> list[tuple[str, str]]:
    """(field, reason) for every problem of a declaration; empty when it is valid."""
    found: list[tuple[str, str]] = []
    if rule.kind not in KINDS:
        found.append(("kind", "blackout-kind"))
    if rule.end_date < rule.start_date:
        found.append(("end_date", "range-order"))
    if rule.start_date < today:
        found.append(("start_date", "past-date"))
    if (rule.end_date - rule.start_date).days >= max_days:
        found.append(("end_date", "blackout-too-long"))
    if (rule.start_time is None) != (rule.end_time is None):
        found.append(("end_time", "time-pair"))
    elif (
        rule.start_time is not None
        and rule.end_time is not None
        and rule.end_time <= rule.start_time
    ):
        found.append(("end_time", "time-order"))
    if rule.kind == "discouraged" and not 0 <= rule.cap_percent < 100:
        found.append(("cap_percent", "cap-percent"))
    return found


def slot_state(rules: Iterable[Rule], capacity: int) -> tuple[bool, int | None]:
    """(blocked, reduced capacity) of a slot under the rules that cover it."""
    blocked, reduced = False, None
    for rule in rules:
        if rule.kind in ("closed", "no_new_bookings"):
            blocked = True
        elif rule.kind == "discouraged":
            kept = capacity * rule.cap_percent // 100
            reduced = kept if reduced is None else min(reduced, kept)
    return blocked, reduced


@dataclass
class Candidate:
    slot_id: int
    office_id: int
    day: date
    start: time
    day_row: int  # office_day.id
    window_row: int  # onsite_window.id
    free: int  # seats left in the slot


@dataclass(frozen=True)
class Want:
    appointment_id: int
    office_id: int
    service: str
    day: date
    start: time
    people: int


@dataclass
class Planner:
    """Assigns seats in memory, keeping every cap; the caller applies the result
    with conditional UPDATEs, so a racing booking can only make it retry."""

    # (office, service) -> day -> slots of that day
    candidates: dict[tuple[int, str], dict[date, list[Candidate]]]
    day_free: dict[int, int]  # office_day.id -> couples left
    window_free: dict[int, int]  # onsite_window.id -> people left
    region_offices: dict[int, list[int]] = field(default_factory=dict)
    _orders: dict[tuple[int, str, date], list[date]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        slots: Iterable[tuple[str, Candidate]],
        day_free: dict[int, int],
        window_free: dict[int, int],
        region_offices: dict[int, list[int]] | None = None,
        excluded_days: Collection[tuple[int, str, date]] = (),
    ) -> Planner:
        """``excluded_days``: (office, service, day) no one is placed on, e.g. lottery
        dates, whose seats go by draw rather than first come."""
        excluded = set(excluded_days)
        candidates: dict[tuple[int, str], dict[date, list[Candidate]]] = {}
        for service, c in slots:
            if (c.office_id, service, c.day) in excluded:
                continue
            candidates.setdefault((c.office_id, service), {}).setdefault(c.day, []).append(c)
        return cls(candidates, day_free, window_free, region_offices or {})

    def _fits(self, c: Candidate, people: int) -> bool:
        return (
            c.free >= 1
            and self.day_free.get(c.day_row, 0) >= 1
            and self.window_free.get(c.window_row, 0) >= people
        )

    def _best(self, want: Want, office_id: int) -> Candidate | None:
        by_day = self.candidates.get((office_id, want.service), {})
        # Nearest day first; at equal distance the later day. Most couples of a
        # run share a day: the order is computed once per office, service and day.
        key = (office_id, want.service, want.day)
        days = self._orders.get(key)
        if days is None:
            days = self._orders[key] = sorted(
                by_day, key=lambda d: (abs((d - want.day).days), d < want.day)
            )
        target = want.start.hour * 60 + want.start.minute
        for day in days:
            slots = by_day.get(day)
            if not slots:
                continue
            if self.day_free.get(slots[0].day_row, 0) < 1:
                continue  # the whole day is at its cap
            fitting = [c for c in slots if self._fits(c, want.people)]
            if fitting:
                return min(
                    fitting,
                    key=lambda c: (abs(c.start.hour * 60 + c.start.minute - target), c.slot_id),
                )
        return None

    def place(
        self, want: Want, *, other_offices: bool, only: Collection[int] | None = None
    ) -> Candidate | None:
        """The seat for ``want`` (taken from the in-memory counters), or None. ``only``:
        the other offices this couple may go to at all (designated offices for parties
        who need one, scheduler/domain/rules.py); None: any of the region."""
        chosen = self._best(want, want.office_id)
        if chosen is None and other_offices and want.service in MOVABLE_ACROSS_OFFICES:
            for office_id in self.region_offices.get(want.office_id, []):
                if only is not None and office_id not in only:
                    continue
                chosen = self._best(want, office_id)
                if chosen is not None:
                    break
        if chosen is not None:
            chosen.free -= 1
            self.day_free[chosen.day_row] -= 1
            self.window_free[chosen.window_row] -= want.people
            if chosen.free < 1:  # keep later searches short on a busy horizon
                by_day = self.candidates[(chosen.office_id, want.service)]
                by_day[chosen.day].remove(chosen)
                if not by_day[chosen.day]:
                    del by_day[chosen.day]
        return chosen
