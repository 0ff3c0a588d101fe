"""Hot dates: festivals, 520/521, palindromes and repeated-digit dates."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scheduler.domain.hotdates import KINDS, LABELS_EN, LABELS_ZH, HotDate, hot_dates, is_hot


def kinds_of(day: date) -> tuple[str, ...]:
    hot = is_hot(day)
    return hot.kinds if hot is not None else ()


def test_every_kind_has_both_labels() -> None:
    assert set(KINDS) == set(LABELS_ZH) == set(LABELS_EN)


@pytest.mark.parametrize("year", range(2020, 2041))
def test_fixed_days_every_year(year: int) -> None:
    assert "valentines" in kinds_of(date(year, 2, 14))
    assert "520" in kinds_of(date(year, 5, 20))
    assert "521" in kinds_of(date(year, 5, 21))
    assert "repeated" in kinds_of(date(year, 11, 11))


def test_valentines_labels() -> None:
    assert is_hot(date(2026, 2, 14)) == HotDate(
        day=date(2026, 2, 14),
        kinds=("valentines",),
        label_zh="情人节",
        label_en="Valentine's Day",
    )


def test_520_label() -> None:
    hot = is_hot(date(2026, 5, 20))
    assert hot is not None
    assert hot.label_zh == "520 网络情人节"


@pytest.mark.parametrize(
    ("lantern", "qixi"),
    [
        # Checked against lunar-python and published calendars.
        (date(2025, 2, 12), date(2025, 8, 29)),
        (date(2026, 3, 3), date(2026, 8, 19)),
        (date(2027, 2, 20), date(2027, 8, 8)),
    ],
)
def test_lunar_festivals(lantern: date, qixi: date) -> None:
    assert kinds_of(lantern) == ("lantern",)
    assert kinds_of(qixi) == ("qixi",)
    # Nothing lunar on the neighbouring days: the conversion is not off by one.
    for day in (lantern, qixi):
        assert kinds_of(day - timedelta(days=1)) == ()
        assert kinds_of(day + timedelta(days=1)) == ()


def test_exactly_one_lantern_and_one_qixi_per_year() -> None:
    for year in (2025, 2026, 2027, 2028):
        year_dates = hot_dates(date(year, 1, 1), date(year, 12, 31))
        assert sum("lantern" in hot.kinds for hot in year_dates) == 1
        assert sum("qixi" in hot.kinds for hot in year_dates) == 1


def test_palindrome() -> None:
    hot = is_hot(date(2020, 2, 2))
    assert hot is not None
    # 20200202 also uses only the digits 2 and 0, so it is repeated too.
    assert hot.kinds == ("palindrome", "repeated")
    assert "valentines" not in hot.kinds
    assert hot.label_zh == "回文日 / 重复数字日"
    assert kinds_of(date(2021, 12, 2)) == ("palindrome",)
    assert kinds_of(date(2030, 3, 2)) == ("palindrome",)


def test_palindromes_of_three_years() -> None:
    found = [
        hot.day
        for hot in hot_dates(date(2021, 1, 1), date(2023, 12, 31))
        if "palindrome" in hot.kinds
    ]
    assert found == [date(2021, 12, 2)]


@pytest.mark.parametrize(
    "day",
    [
        date(2022, 2, 22),  # rule (b): digits 2 and 0
        date(2020, 2, 20),
        date(2000, 2, 2),
        date(2011, 11, 11),  # rule (a): MMDD is 1111 (three distinct digits overall)
        date(2026, 11, 11),
    ],
)
def test_repeated(day: date) -> None:
    assert "repeated" in kinds_of(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2012, 12, 12),  # three distinct digits: 2, 0, 1
        date(2026, 2, 22),
        date(2026, 12, 12),
        date(2022, 12, 22),  # 1 is a third digit
    ],
)
def test_not_repeated(day: date) -> None:
    assert "repeated" not in kinds_of(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 5),
        date(2026, 2, 13),
        date(2026, 2, 15),
        date(2026, 5, 19),
        date(2026, 5, 22),
        date(2026, 10, 1),
        date(2026, 11, 10),
        date(2026, 12, 25),
    ],
)
def test_ordinary_dates_are_not_hot(day: date) -> None:
    assert is_hot(day) is None


def test_lantern_on_valentines_day_is_merged() -> None:
    # In 2033 the 15th of the 1st lunar month falls on 14 February.
    day = date(2033, 2, 14)
    hot = is_hot(day)
    assert hot is not None
    assert hot.kinds == ("valentines", "lantern")
    assert hot.label_zh == "情人节 / 元宵节"
    assert hot.label_en == "Valentine's Day / Lantern Festival"
    in_range = [h for h in hot_dates(date(2033, 1, 1), date(2033, 12, 31)) if h.day == day]
    assert in_range == [hot]


def test_range_sorted_unique_and_consistent_with_is_hot() -> None:
    start, end = date(2025, 1, 1), date(2027, 12, 31)
    result = hot_dates(start, end)
    days = [hot.day for hot in result]
    assert days == sorted(set(days))
    assert all(start <= day <= end for day in days)
    assert all(is_hot(hot.day) == hot for hot in result)
    assert all(hot.kinds for hot in result)


def test_range_2026() -> None:
    result = hot_dates(date(2026, 1, 1), date(2026, 12, 31))
    assert [(hot.day, hot.kinds) for hot in result] == [
        (date(2026, 2, 14), ("valentines",)),
        (date(2026, 3, 3), ("lantern",)),
        (date(2026, 5, 20), ("520",)),
        (date(2026, 5, 21), ("521",)),
        (date(2026, 8, 19), ("qixi",)),
        (date(2026, 11, 11), ("repeated",)),
    ]


def test_range_is_inclusive() -> None:
    day = date(2026, 2, 14)
    assert [hot.day for hot in hot_dates(day, day)] == [day]
    assert hot_dates(date(2026, 2, 15), date(2026, 3, 2)) == []


def test_three_years_is_the_limit() -> None:
    start = date(2026, 1, 1)
    assert hot_dates(start, date(2029, 1, 1))[-1].day == date(2028, 11, 11)
    with pytest.raises(ValueError, match="longer than 3 years"):
        hot_dates(start, date(2029, 1, 2))
    with pytest.raises(ValueError):
        hot_dates(start, date(2040, 1, 1))


def test_three_years_from_leap_day() -> None:
    start = date(2028, 2, 29)
    hot_dates(start, date(2031, 2, 28))
    with pytest.raises(ValueError):
        hot_dates(start, date(2031, 3, 1))


def test_reversed_range_raises() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        hot_dates(date(2026, 2, 1), date(2026, 1, 1))


def test_end_of_calendar() -> None:
    # No overflow when start + 3 years would pass date.max.
    result = hot_dates(date(9998, 1, 1), date.max)
    assert [hot.day for hot in result if "valentines" in hot.kinds] == [
        date(9998, 2, 14),
        date(9999, 2, 14),
    ]
