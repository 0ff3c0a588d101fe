"""Pure rules of the offices admin (scheduler/domain/capacity_change.py), no database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.domain.capacity_change import (
    days_to_regenerate,
    first_regenerated_day,
    hours_problems,
    office_problems,
    over_cap,
    parse_hours_line,
    summary,
)


@pytest.mark.parametrize(
    ("weekly", "expected"),
    [
        ({"0": [["09:00", "12:00"], ["13:30", "17:00"]]}, []),
        ({"0": [["09:00", "12:00"], ["12:00", "17:00"]]}, []),  # touching is no overlap
        ({"0": [["13:00", "17:00"], ["09:00", "13:30"]]}, [("weekly_hours", "hours-overlap")]),
        ({"6": [["12:00", "09:00"]]}, [("weekly_hours", "interval-order")]),
        ({"6": [["09:00", "09:00"]]}, [("weekly_hours", "interval-order")]),
        ({"7": [["09:00", "10:00"]]}, [("weekly_hours", "weekday")]),
        ({"1": [["9:00", "10:00"]]}, [("weekly_hours", "clock")]),
        ({"1": [["09:00", "24:00"]]}, [("weekly_hours", "clock")]),
        ({"1": [["09:00"]]}, [("weekly_hours", "clock")]),
        ({}, []),
    ],
)
def test_weekly_hours(weekly: dict[str, list[list[str]]], expected: list[tuple[str, str]]) -> None:
    assert hours_problems(weekly) == expected


def test_office_fields() -> None:
    assert office_problems({"timezone": "Asia/Shanghai", "booking_opens_at": "08:30"}) == []
    assert office_problems({"timezone": "Asia/Beijing"}) == [("timezone", "timezone")]
    assert office_problems({"booking_opens_at": "8:30"}) == [("booking_opens_at", "clock")]
    assert office_problems({"name_zh": "  "}) == [("name_zh", "required")]
    assert office_problems({"address_en": "Road\x00"}) == [("address_en", "name")]


def test_hours_lines_of_the_page() -> None:
    assert parse_hours_line("09:00-12:00, 13:30-17:00") == [["09:00", "12:00"], ["13:30", "17:00"]]
    assert parse_hours_line("09:00–12:00，13:30-17:00") == [["09:00", "12:00"], ["13:30", "17:00"]]
    assert parse_hours_line("  ") == []
    with pytest.raises(ValueError):
        parse_hours_line("nine to five")


def test_over_cap_names_each_row_and_sorts_them() -> None:
    rows = [
        (date(2027, 1, 5), "10:00", 3),
        (date(2027, 1, 4), "09:30", 5),
        (date(2027, 1, 4), "09:00", 2),
    ]
    found = over_cap("slot", rows, 2)
    assert [(o.day, o.start, o.booked) for o in found] == [
        (date(2027, 1, 4), "09:30", 5),
        (date(2027, 1, 5), "10:00", 3),
    ]
    assert found[0].as_dict() == {
        "kind": "slot",
        "date": "2027-01-04",
        "start": "09:30",
        "booked": 5,
        "new_cap": 2,
    }
    assert summary(found) == "2027-01-04 09:30: 5 > 2; 2027-01-05 10:00: 3 > 2"
    many = over_cap("day", [(date(2027, 1, d), None, 9) for d in range(1, 9)], 1)
    assert summary(many, limit=2) == "2027-01-01: 9 > 1; 2027-01-02: 9 > 1 (+6)"
    assert over_cap("slot", rows, 5) == []


def test_regeneration_starts_tomorrow_local_and_skips_booked_days() -> None:
    # 17:00 UTC on 4 January is already 5 January in Shanghai.
    now = datetime(2027, 1, 4, 17, 0, tzinfo=UTC)
    assert first_regenerated_day(now, ZoneInfo("Asia/Shanghai")) == date(2027, 1, 6)
    assert first_regenerated_day(now, ZoneInfo("UTC")) == date(2027, 1, 5)
    days = [date(2027, 1, d) for d in range(6, 10)]
    assert days_to_regenerate(days, [date(2027, 1, 7), date(2027, 1, 20)]) == [
        date(2027, 1, 6),
        date(2027, 1, 8),
        date(2027, 1, 9),
    ]
