"""Opening days, slot times and the booking window.

Offices follow the mainland China working calendar of the State Council's
notices (scheduler/domain/holidays.py): every day of a holiday block closes
them and make-up working days (调休, weekend days declared working days) open
them. Everything here works on local dates and returns UTC instants; the
current time is always passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from scheduler.domain.holidays import DayKind, WorkCalendar

DayStatus = Literal["open", "full", "closed", "not_yet_open", "past"]

# Keys "0".."6" (Monday = "0", as date.weekday()) -> [("09:00", "12:00"), ...].
# Strings rather than ints because the rule is stored as JSON, whose keys are strings.
WeeklyHours = dict[str, list[tuple[str, str]]]

# A make-up working day is an ordinary working day by decree, so it runs the
# Monday (normal weekday) schedule rather than the weekend rule of its weekday.
# A service with no weekday hours at all (a weekend-only ceremony) keeps its own
# hours of that weekday: the day is still a Saturday for the couples it serves.
MAKEUP_WORKDAY_RULE = "0"


def day_kind(day: date, calendar: WorkCalendar) -> DayKind:
    """Classify a local date in the mainland China working calendar (notices as data,
    statutory days only for a year with no notice: scheduler/domain/holidays.py)."""
    return calendar.kind(day)


def _parse_interval(interval: Sequence[str]) -> tuple[time, time]:
    if len(interval) != 2:
        raise ValueError(f"an opening interval is [start, end], got {list(interval)!r}")
    start, end = time.fromisoformat(interval[0]), time.fromisoformat(interval[1])
    if start >= end:
        raise ValueError(f"opening interval ends before it starts: {list(interval)!r}")
    return start, end


def opening_intervals(
    weekly_hours: Mapping[str, Sequence[Sequence[str]]], day: date, calendar: WorkCalendar
) -> list[tuple[time, time]]:
    """Local opening intervals of ``day``, sorted; [] when the office is closed.

    Every day of a holiday block is closed for every service, weekends included.
    A weekday missing from ``weekly_hours`` is closed. Malformed rules raise
    ValueError rather than silently opening or closing an office.
    """
    kind = day_kind(day, calendar)
    if kind == "holiday":
        return []
    key = str(day.weekday())
    if kind == "makeup_workday" and weekly_hours.get(MAKEUP_WORKDAY_RULE):
        key = MAKEUP_WORKDAY_RULE
    return sorted(_parse_interval(interval) for interval in weekly_hours.get(key, ()))


def _require_aware(moment: datetime, name: str) -> None:
    # A naive datetime would be read in the server's local zone: a hidden clock/env
    # dependency that shifts every slot by the server's offset.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def slot_starts(
    day: date, intervals: Sequence[tuple[time, time]], slot_minutes: int, tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Consecutive (start_utc, end_utc) slots of ``slot_minutes`` inside each interval.

    A trailing partial slot is dropped: nobody can be served in it. Steps are taken
    in UTC, not on the wall clock, so a slot always lasts ``slot_minutes`` of real
    time even across a daylight-saving change (irrelevant for China, not for
    every office's zone).
    """
    if slot_minutes <= 0:
        raise ValueError("slot_minutes must be positive")
    length = timedelta(minutes=slot_minutes)
    slots: list[tuple[datetime, datetime]] = []
    for opens, closes in intervals:
        start = datetime.combine(day, opens, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day, closes, tzinfo=tz).astimezone(UTC)
        while start + length <= end:
            slots.append((start, start + length))
            start += length
    return slots


def onsite_window_start(start_utc: datetime, tz: ZoneInfo) -> datetime:
    """UTC instant starting the local clock hour that contains ``start_utc``.

    The on-site cap counts people per local hour (what the waiting hall sees); in
    zones with a half-hour offset that is not the UTC hour.
    """
    _require_aware(start_utc, "start_utc")
    local = start_utc.astimezone(tz)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def last_bookable_day(now_utc: datetime, tz: ZoneInfo, days_ahead: int, opens_at: time) -> date:
    """Latest local date bookable at ``now_utc``.

    Booking for local date D opens at ``opens_at`` local time, ``days_ahead`` days
    before D. Dates are local: at 00:30 in Shanghai the UTC date is still yesterday.
    """
    _require_aware(now_utc, "now_utc")
    local = now_utc.astimezone(tz)
    opened_today = local.time() >= opens_at.replace(tzinfo=None)
    return local.date() + timedelta(days=days_ahead if opened_today else days_ahead - 1)


def generation_days(now_utc: datetime, tz: ZoneInfo, days_ahead: int, opens_at: time) -> list[date]:
    """Local dates that need slots: today through the last bookable day plus one.

    The extra day means slots already exist at the moment its booking opens, even
    if the generation job last ran the day before.
    """
    _require_aware(now_utc, "now_utc")
    today = now_utc.astimezone(tz).date()
    last = last_bookable_day(now_utc, tz, days_ahead, opens_at) + timedelta(days=1)
    return [today + timedelta(days=offset) for offset in range((last - today).days + 1)]


def day_status(
    day: date,
    *,
    today: date,
    last_bookable: date,
    has_slots: bool,
    remaining_seats: int,
    day_remaining: int,
) -> DayStatus:
    """Status of a local date in the booking calendar.

    Checks run from the most to the least definitive: a past day is past even if it
    had no slots. New statuses (blackout, discouraged, lottery) slot into this order.
    """
    if day < today:
        return "past"
    if day > last_bookable:
        return "not_yet_open"
    if not has_slots:
        return "closed"
    if remaining_seats <= 0 or day_remaining <= 0:
        return "full"
    return "open"
