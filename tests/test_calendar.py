"""Opening days (China's holidays and make-up workdays), slot times and booking window."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from scheduler.domain.calendar import (
    day_kind,
    day_status,
    generation_days,
    last_bookable_day,
    onsite_window_start,
    opening_intervals,
    slot_starts,
)
from scheduler.domain.holidays import WorkCalendar
from scheduler.usecases.calendar.holidays import shipped_notices, statutory_rules

SHANGHAI = ZoneInfo("Asia/Shanghai")
OPENS_AT = time(8, 30)

# Distinct hours per rule so a test can tell which rule a day used.
HOURS: dict[str, list[list[str]]] = {
    "0": [["09:00", "12:00"], ["13:30", "17:00"]],
    "1": [["09:00", "17:00"]],
    "2": [["09:00", "17:00"]],
    "3": [["09:00", "17:00"]],
    "4": [["09:00", "16:00"]],
    "5": [["09:00", "11:00"]],
    # No "6": closed on Sundays.
}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# --- day kinds (the shipped 2025 and 2026 notices, config/holidays/; the
# statutory days only for a year with no notice) ---------------------------------

CAL = WorkCalendar(statutory_rules(), shipped_notices())


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        # 2025 National Day + Mid-Autumn: Oct 1-8 off, Sun Sep 28 and Sat Oct 11 worked.
        (date(2025, 10, 1), "holiday"),
        (date(2025, 10, 6), "holiday"),
        (date(2025, 10, 8), "holiday"),
        (date(2025, 10, 4), "holiday"),  # a Saturday inside the block: closed too
        (date(2025, 9, 28), "makeup_workday"),
        (date(2025, 10, 11), "makeup_workday"),
        (date(2025, 10, 9), "workday"),
        (date(2025, 10, 12), "weekend"),
        # 2025 Spring Festival: Jan 28 - Feb 4 off, Sun Jan 26 and Sat Feb 8 worked.
        (date(2025, 1, 28), "holiday"),
        (date(2025, 2, 4), "holiday"),
        (date(2025, 1, 26), "makeup_workday"),
        (date(2025, 2, 8), "makeup_workday"),
        (date(2025, 2, 5), "workday"),
        # 2026: New Year Jan 1-3 off with Sun Jan 4 worked; Spring Festival Feb 15-23
        # off with Sat Feb 14 and Sat Feb 28 worked; National Day Oct 1-7 off with
        # Sun Sep 20 and Sat Oct 10 worked.
        (date(2026, 1, 2), "holiday"),
        (date(2026, 1, 4), "makeup_workday"),
        (date(2026, 2, 14), "makeup_workday"),
        (date(2026, 2, 17), "holiday"),
        (date(2026, 2, 23), "holiday"),
        (date(2026, 2, 28), "makeup_workday"),
        (date(2026, 10, 1), "holiday"),
        (date(2026, 10, 7), "holiday"),
        (date(2026, 9, 20), "makeup_workday"),
        (date(2026, 10, 10), "makeup_workday"),
        (date(2026, 10, 8), "workday"),
        (date(2026, 3, 2), "workday"),
        (date(2026, 3, 7), "weekend"),
        (date(2026, 3, 8), "weekend"),
        # Women's Day (Sunday 2026-03-08 above; Friday 2027-03-05 is no holiday at all)
        # is a half day for some only and never closes an office.
        (date(2026, 3, 9), "workday"),
    ],
)
def test_day_kind(day: date, kind: str) -> None:
    assert day_kind(day, CAL) == kind


def test_a_year_without_notice_has_the_statutory_days_only() -> None:
    """2027 (no notice shipped): the 2024 amended statutory days, lunar dates from
    lunar-python; nothing more closes and no make-up day is invented."""
    expected = {
        date(2027, 1, 1),
        *(date(2027, 2, d) for d in (5, 6, 7, 8)),  # 除夕 (Feb 5) and 正月初一 to 初三
        date(2027, 4, 5),  # 清明
        date(2027, 5, 1),
        date(2027, 5, 2),
        date(2027, 6, 9),  # 端午
        date(2027, 9, 15),  # 中秋
        *(date(2027, 10, d) for d in (1, 2, 3)),
    }
    year = [date(2027, 1, 1) + timedelta(days=i) for i in range(365)]
    assert {d for d in year if day_kind(d, CAL) == "holiday"} == expected
    assert not [d for d in year if day_kind(d, CAL) == "makeup_workday"]
    assert CAL.missing_years([2026, 2027]) == [2027]


# --- opening intervals -------------------------------------------------------------


def test_holiday_has_no_opening_intervals() -> None:
    assert date(2025, 10, 1).weekday() == 2  # a Wednesday, which normally opens
    assert opening_intervals(HOURS, date(2025, 10, 1), CAL) == []


def test_makeup_workday_uses_the_monday_rule() -> None:
    # Sunday 2025-09-28: Sundays are closed, but this one is a working day.
    monday = [(time(9, 0), time(12, 0)), (time(13, 30), time(17, 0))]
    assert opening_intervals(HOURS, date(2025, 9, 28), CAL) == monday
    # Saturday 2025-10-11 also runs Monday's hours, not Saturday's short morning.
    assert opening_intervals(HOURS, date(2025, 10, 11), CAL) == monday


def test_makeup_day_of_a_weekend_only_service_keeps_its_own_hours() -> None:
    # A ceremony held on Saturdays only (GZ-YX): Sat 2025-10-11 is a working day, the
    # ceremony hall still runs its Saturday hours; a Sunday make-up day has none.
    saturdays = {"5": [["10:00", "12:00"]]}
    assert opening_intervals(saturdays, date(2025, 10, 11), CAL) == [(time(10, 0), time(12, 0))]
    assert opening_intervals(saturdays, date(2025, 9, 28), CAL) == []


def test_ordinary_days_use_their_weekday_rule() -> None:
    assert opening_intervals(HOURS, date(2025, 10, 10), CAL) == [(time(9, 0), time(16, 0))]  # Fri
    assert opening_intervals(HOURS, date(2025, 10, 18), CAL) == [(time(9, 0), time(11, 0))]  # Sat
    assert opening_intervals(HOURS, date(2025, 10, 19), CAL) == []  # Sun, no rule


def test_intervals_accept_tuples_and_come_back_sorted() -> None:
    hours = {"1": [("14:00", "17:00"), ("09:00", "12:00")]}
    assert opening_intervals(hours, date(2025, 10, 14), CAL) == [
        (time(9, 0), time(12, 0)),
        (time(14, 0), time(17, 0)),
    ]


@pytest.mark.parametrize(
    "bad", [[["12:00", "09:00"]], [["09:00"]], [["9am", "12:00"]], [["09:00", "09:00"]]]
)
def test_malformed_rules_raise(bad: list[list[str]]) -> None:
    with pytest.raises(ValueError):
        opening_intervals({"1": bad}, date(2025, 10, 14), CAL)


# --- slots -----------------------------------------------------------------------------


def test_slots_are_returned_in_utc() -> None:
    slots = slot_starts(date(2025, 10, 9), [(time(9, 0), time(10, 0))], 30, SHANGHAI)
    assert slots == [
        (utc(2025, 10, 9, 1, 0), utc(2025, 10, 9, 1, 30)),
        (utc(2025, 10, 9, 1, 30), utc(2025, 10, 9, 2, 0)),
    ]
    assert all(start.utcoffset() == timedelta(0) for start, _ in slots)


def test_trailing_partial_slot_is_dropped() -> None:
    slots = slot_starts(date(2025, 10, 9), [(time(9, 0), time(10, 50))], 20, SHANGHAI)
    assert [start.astimezone(SHANGHAI).time() for start, _ in slots] == [
        time(9, 0),
        time(9, 20),
        time(9, 40),
        time(10, 0),
        time(10, 20),
    ]
    assert slots[-1][1] == local(2025, 10, 9, 10, 40)


def test_slots_cover_every_interval_and_skip_the_lunch_break() -> None:
    intervals = opening_intervals(HOURS, date(2025, 10, 13), CAL)  # Monday
    slots = slot_starts(date(2025, 10, 13), intervals, 30, SHANGHAI)
    assert len(slots) == 6 + 7
    starts = [start for start, _ in slots]
    assert local(2025, 10, 13, 12, 0) not in starts
    assert local(2025, 10, 13, 13, 30) in starts
    assert starts == sorted(starts)


def test_slot_early_morning_falls_on_previous_utc_date() -> None:
    slots = slot_starts(date(2025, 10, 9), [(time(7, 0), time(8, 0))], 60, SHANGHAI)
    assert slots == [(utc(2025, 10, 8, 23, 0), utc(2025, 10, 9, 0, 0))]


def test_interval_shorter_than_a_slot_yields_nothing() -> None:
    assert slot_starts(date(2025, 10, 9), [(time(9, 0), time(9, 15))], 20, SHANGHAI) == []


def test_slots_last_real_minutes_across_dst_change() -> None:
    # New York springs forward at 02:00 on 2025-03-09: 01:00-04:00 local is 2 real hours.
    new_york = ZoneInfo("America/New_York")
    slots = slot_starts(date(2025, 3, 9), [(time(1, 0), time(4, 0))], 60, new_york)
    assert slots == [
        (utc(2025, 3, 9, 6, 0), utc(2025, 3, 9, 7, 0)),
        (utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 8, 0)),
    ]


def test_slot_minutes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        slot_starts(date(2025, 10, 9), [(time(9, 0), time(10, 0))], 0, SHANGHAI)


# --- on-site window ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "window"),
    [
        (utc(2025, 10, 9, 1, 40), utc(2025, 10, 9, 1, 0)),  # 09:40 local -> 09:00
        (utc(2025, 10, 9, 1, 0), utc(2025, 10, 9, 1, 0)),  # on the hour stays put
        (utc(2025, 10, 8, 16, 59, 59), utc(2025, 10, 8, 16, 0)),  # 00:59:59 local
    ],
)
def test_onsite_window_start_shanghai(start: datetime, window: datetime) -> None:
    assert onsite_window_start(start, SHANGHAI) == window


def test_onsite_window_follows_the_local_hour_not_the_utc_hour() -> None:
    # 04:00 UTC is 09:30 in Kolkata (+05:30); its local hour began at 03:30 UTC.
    kolkata = ZoneInfo("Asia/Kolkata")
    assert onsite_window_start(utc(2025, 10, 9, 4, 0), kolkata) == utc(2025, 10, 9, 3, 30)


def test_onsite_window_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        onsite_window_start(datetime(2025, 10, 9, 1, 40), SHANGHAI)


# --- booking window -----------------------------------------------------------------


def test_last_bookable_day_just_before_opening_time() -> None:
    # 00:29:59 UTC = 08:29:59 in Shanghai on 2025-06-10.
    assert last_bookable_day(utc(2025, 6, 10, 0, 29, 59), SHANGHAI, 14, OPENS_AT) == date(
        2025, 6, 23
    )


def test_last_bookable_day_at_opening_time() -> None:
    assert last_bookable_day(utc(2025, 6, 10, 0, 30), SHANGHAI, 14, OPENS_AT) == date(2025, 6, 24)


def test_last_bookable_day_just_after_local_midnight() -> None:
    # 16:30 UTC on June 9 is 00:30 on June 10 in Shanghai: the local date counts,
    # and booking for June 24 has not opened yet.
    now = utc(2025, 6, 9, 16, 30)
    assert now.date() == date(2025, 6, 9)
    assert last_bookable_day(now, SHANGHAI, 14, OPENS_AT) == date(2025, 6, 23)


def test_last_bookable_day_just_before_local_midnight() -> None:
    # 15:59 UTC is 23:59 local on June 9: that day's opening has passed.
    assert last_bookable_day(utc(2025, 6, 9, 15, 59), SHANGHAI, 14, OPENS_AT) == date(2025, 6, 23)


def test_last_bookable_day_when_utc_is_already_past_opening_but_local_is_not() -> None:
    # 23:00 UTC on June 9 = 07:00 local June 10; the UTC clock reads past 08:30
    # on the 9th but locally booking for June 24 opens only in 90 minutes.
    assert last_bookable_day(utc(2025, 6, 9, 23, 0), SHANGHAI, 14, OPENS_AT) == date(2025, 6, 23)


def test_last_bookable_day_with_same_day_window() -> None:
    # days_ahead=0: today's slots open at 08:30 today; before that nothing is bookable.
    assert last_bookable_day(utc(2025, 6, 10, 0, 0), SHANGHAI, 0, OPENS_AT) == date(2025, 6, 9)
    assert last_bookable_day(utc(2025, 6, 10, 1, 0), SHANGHAI, 0, OPENS_AT) == date(2025, 6, 10)


def test_last_bookable_day_refuses_naive_now() -> None:
    with pytest.raises(ValueError):
        last_bookable_day(datetime(2025, 6, 10, 9, 0), SHANGHAI, 14, OPENS_AT)


def test_generation_days_before_opening_time() -> None:
    days = generation_days(utc(2025, 6, 10, 0, 29), SHANGHAI, 14, OPENS_AT)
    assert days[0] == date(2025, 6, 10)
    assert days[-1] == date(2025, 6, 24)  # last bookable (June 23) + 1
    assert len(days) == 15
    assert all(b - a == timedelta(days=1) for a, b in pairwise(days))


def test_generation_days_after_opening_time() -> None:
    days = generation_days(utc(2025, 6, 10, 0, 30), SHANGHAI, 14, OPENS_AT)
    assert (days[0], days[-1], len(days)) == (date(2025, 6, 10), date(2025, 6, 25), 16)


def test_generation_days_start_from_the_local_date() -> None:
    # 00:30 local on June 10 is still June 9 in UTC; June 9 is already past locally.
    days = generation_days(utc(2025, 6, 9, 16, 30), SHANGHAI, 14, OPENS_AT)
    assert days[0] == date(2025, 6, 10)
    assert date(2025, 6, 9) not in days


# --- day status -------------------------------------------------------------------------

TODAY = date(2025, 6, 10)
LAST = date(2025, 6, 24)


def status(day: date, *, has_slots: bool = True, seats: int = 5, day_left: int = 10) -> str:
    return day_status(
        day,
        today=TODAY,
        last_bookable=LAST,
        has_slots=has_slots,
        remaining_seats=seats,
        day_remaining=day_left,
    )


def test_status_open() -> None:
    assert status(TODAY) == "open"
    assert status(LAST) == "open"


def test_status_past_wins_over_everything() -> None:
    assert status(TODAY - timedelta(days=1)) == "past"
    assert status(TODAY - timedelta(days=1), has_slots=False, seats=0, day_left=0) == "past"


def test_status_not_yet_open() -> None:
    assert status(LAST + timedelta(days=1)) == "not_yet_open"
    assert status(LAST + timedelta(days=1), has_slots=False) == "not_yet_open"


def test_status_closed_when_no_slots() -> None:
    assert status(TODAY, has_slots=False, seats=0, day_left=0) == "closed"


@pytest.mark.parametrize(("seats", "day_left"), [(0, 10), (5, 0), (5, -1), (0, 0)])
def test_status_full(seats: int, day_left: int) -> None:
    assert status(TODAY, seats=seats, day_left=day_left) == "full"
