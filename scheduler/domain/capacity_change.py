"""Pure rules of the offices admin: what an office and its opening rules may say,
and which counters a lowered cap would leave over-full. No I/O; ``now`` passed in.

A cap may never drop below what is already booked: the caller reads the future
counters, asks ``over_cap`` and refuses the change (naming each row) when
anything comes back. The rows are plain tuples so this stays testable without a
database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones

# (field, reason): reasons are translation keys error.invalid-input.<reason>.
Problem = tuple[str, str]

MAX_SLOT_MINUTES = 240
MIN_SLOT_MINUTES = 5
WEEKDAYS = tuple(str(d) for d in range(7))  # Monday = "0", as date.weekday()


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_timezone(name: str) -> bool:
    return name in _zones()


def _clock(raw: str) -> time | None:
    if len(raw) != 5 or raw[2] != ":":
        return None
    try:
        return time.fromisoformat(raw)
    except ValueError:
        return None


def office_problems(values: Mapping[str, object]) -> list[Problem]:
    """Checks the schema cannot express (it bounds the numbers and lengths)."""
    found: list[Problem] = []
    zone = values.get("timezone")
    if zone is not None and not valid_timezone(str(zone)):
        found.append(("timezone", "timezone"))
    opens = values.get("booking_opens_at")
    if opens is not None and _clock(str(opens)) is None:
        found.append(("booking_opens_at", "clock"))
    for name in ("name_zh", "name_en", "address_zh", "address_en"):
        text = values.get(name)
        if text is not None and not str(text).isprintable():
            found.append((name, "name"))
    for name in ("name_zh", "name_en"):
        if name in values and not str(values[name]).strip():
            found.append((name, "required"))
    return found


def hours_problems(weekly: Mapping[str, Sequence[Sequence[str]]]) -> list[Problem]:
    """Weekly opening rules: weekday keys "0".."6", intervals "HH:MM"-"HH:MM" that
    end after they start and do not overlap (an overlap would make two slots of
    one service at the same time, double the cap the admin typed)."""
    for key, intervals in weekly.items():
        if key not in WEEKDAYS:
            return [("weekly_hours", "weekday")]
        parsed: list[tuple[time, time]] = []
        for interval in intervals:
            if len(interval) != 2:
                return [("weekly_hours", "clock")]
            start, end = _clock(str(interval[0])), _clock(str(interval[1]))
            if start is None or end is None:
                return [("weekly_hours", "clock")]
            if start >= end:
                return [("weekly_hours", "interval-order")]
            parsed.append((start, end))
        parsed.sort()
        for (_, end), (start, _) in pairwise(parsed):
            if start < end:
                return [("weekly_hours", "hours-overlap")]
    return []


def parse_hours_line(line: str) -> list[list[str]]:
    """One weekday of the page's form: "09:00-12:00, 13:30-17:00" (empty: closed).
    Raises ValueError on anything else."""
    out: list[list[str]] = []
    for part in line.replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        start, sep, end = part.replace("–", "-").partition("-")
        if not sep:
            raise ValueError(part)
        out.append([start.strip(), end.strip()])
    return out


def hours_line(intervals: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in intervals)


@dataclass(frozen=True)
class OverCap:
    """A future counter that already holds more than the new cap allows."""

    kind: str  # slot | day | onsite
    day: date
    start: str | None  # local "HH:MM" of a slot or hall hour; None for a day
    booked: int
    cap: int

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "date": self.day.isoformat(),
            "start": self.start,
            "booked": self.booked,
            "new_cap": self.cap,
        }

    def label(self) -> str:
        when = f"{self.day.isoformat()} {self.start}" if self.start else self.day.isoformat()
        return f"{when}: {self.booked} > {self.cap}"


def over_cap(
    kind: str, rows: Iterable[tuple[date, str | None, int]], new_cap: int
) -> list[OverCap]:
    """Rows (day, local start, booked) whose booked count exceeds ``new_cap``."""
    return sorted(
        (
            OverCap(kind, day, start, booked, new_cap)
            for day, start, booked in rows
            if booked > new_cap
        ),
        key=lambda o: (o.day, o.start or ""),
    )


def summary(found: Sequence[OverCap], limit: int = 5) -> str:
    """The numbers for a message: the first few rows and how many more."""
    text = "; ".join(o.label() for o in found[:limit])
    return text + (f" (+{len(found) - limit})" if len(found) > limit else "")


def first_regenerated_day(now: datetime, tz: ZoneInfo) -> date:
    """New hours or slot length apply from tomorrow (local): today's schedule is
    already running in the hall and on couples' phones."""
    return now.astimezone(tz).date() + timedelta(days=1)


def days_to_regenerate(
    candidates: Iterable[date], days_with_appointments: Iterable[date]
) -> list[date]:
    """Days whose slots may be rebuilt: those no appointment (of any status) points
    into. A booked day keeps its slots as they are, so no couple's time changes
    under them and no history row loses its slot."""
    held = set(days_with_appointments)
    return sorted(d for d in set(candidates) if d not in held)
