"""Dates on which a marriage registry should expect heavy demand.

Couples in mainland China favour romantic festivals and "pretty" dates for
registering a marriage. This module names those days so that capacity planning
and the booking pages can flag them; it never decides what to do about them.
Pure: dates are always passed in, nothing reads the clock.

Kinds of hot date (a day can have several; see :data:`KINDS` for the order):

``valentines``
    14 February, Valentine's Day (情人节).
``520`` and ``521``
    20 and 21 May: "520" / "521" sound like 我爱你 ("I love you"), so both are
    treated as an online Valentine's Day (网络情人节).
``lantern``
    The Lantern Festival (元宵节), 15th day of the 1st lunar month.
``qixi``
    The Qixi Festival (七夕), 7th day of the 7th lunar month. Lunar dates are
    converted with ``lunar-python``; a leap 7th month never holds Qixi.
``palindrome``
    The eight digits ``YYYYMMDD`` read the same backwards (2020-02-02,
    2021-12-02, 2030-03-02).
``repeated``
    A repeated-digit date, by either of two rules:

    (a) month and day are one digit written four times, ``MMDD`` == ``1111``;
        11 November is the only such day, so it is hot every year;
    (b) the eight digits ``YYYYMMDD`` use at most two distinct digits
        (2020-02-02, 2020-02-20, 2022-02-22).

    Rule (b) is deliberately strict: it catches the dates that made headlines,
    but 2011-11-11 and 2012-12-12 use three digits (only the first is caught, by
    rule a), and from 2023 to 2110 no day meets rule (b) at all, so until then
    ``repeated`` means 11 November.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from lunar_python import Lunar

# Canonical order of kinds on one day, which is also the order of their labels.
KINDS = ("valentines", "520", "521", "lantern", "qixi", "palindrome", "repeated")

LABELS_ZH = {
    "valentines": "情人节",
    "520": "520 网络情人节",
    "521": "521 网络情人节",
    "lantern": "元宵节",
    "qixi": "七夕",
    "palindrome": "回文日",
    "repeated": "重复数字日",
}

LABELS_EN = {
    "valentines": "Valentine's Day",
    "520": "520 (online Valentine's Day)",
    "521": "521 (online Valentine's Day)",
    "lantern": "Lantern Festival",
    "qixi": "Qixi Festival",
    "palindrome": "Palindrome date",
    "repeated": "Repeated-digit date",
}

LABEL_SEPARATOR = " / "

# Longest range hot_dates() accepts, in calendar years from ``start``. A cap keeps
# a bad request from iterating over centuries; three years covers any booking
# window plus reporting on the previous ones.
MAX_RANGE_YEARS = 3

# Fixed solar-calendar days: (month, day) -> kind.
_FIXED = {(2, 14): "valentines", (5, 20): "520", (5, 21): "521"}


@dataclass(frozen=True)
class HotDate:
    """A day expected to be in demand, with every reason it is.

    ``kinds`` follow :data:`KINDS` order and the labels join the kinds' labels in
    that same order with " / ", e.g. "情人节 / 元宵节".
    """

    day: date
    kinds: tuple[str, ...]
    label_zh: str
    label_en: str


@lru_cache(maxsize=64)
def _lunar_festivals(year: int) -> dict[date, str]:
    """Solar dates of the lunar festivals of ``year``, computed once per year.

    Cached because each lunar-python conversion costs about 10 ms. The 1st and
    7th lunar months of lunar year ``year`` always fall inside solar year
    ``year`` (the lunar new year is between 21 January and 20 February), so a
    solar year's festivals come from the lunar year of the same number.
    """
    festivals: dict[date, str] = {}
    # Positive month numbers are the ordinary (non-leap) months in lunar-python.
    for kind, month, day in (("lantern", 1, 15), ("qixi", 7, 7)):
        solar = Lunar.fromYmd(year, month, day).getSolar()
        festivals[date(solar.getYear(), solar.getMonth(), solar.getDay())] = kind
    return festivals


def _is_palindrome(digits: str) -> bool:
    return digits == digits[::-1]


def _is_repeated(digits: str) -> bool:
    month_day = digits[4:]
    return len(set(month_day)) == 1 or len(set(digits)) <= 2


def _kinds_on(day: date) -> tuple[str, ...]:
    found: set[str] = set()
    fixed = _FIXED.get((day.month, day.day))
    if fixed is not None:
        found.add(fixed)
    lunar = _lunar_festivals(day.year).get(day)
    if lunar is not None:
        found.add(lunar)
    # Always eight digits: date.year is 1..9999 and is zero-padded like the rest.
    digits = f"{day.year:04d}{day.month:02d}{day.day:02d}"
    if _is_palindrome(digits):
        found.add("palindrome")
    if _is_repeated(digits):
        found.add("repeated")
    return tuple(kind for kind in KINDS if kind in found)


def _hot_date(day: date, kinds: tuple[str, ...]) -> HotDate:
    return HotDate(
        day=day,
        kinds=kinds,
        label_zh=LABEL_SEPARATOR.join(LABELS_ZH[kind] for kind in kinds),
        label_en=LABEL_SEPARATOR.join(LABELS_EN[kind] for kind in kinds),
    )


def is_hot(day: date) -> HotDate | None:
    """The :class:`HotDate` for ``day``, or None on an ordinary day."""
    kinds = _kinds_on(day)
    return _hot_date(day, kinds) if kinds else None


def _add_years(day: date, years: int) -> date:
    # 29 February has no counterpart in a common year; the 28th keeps the limit
    # at "no more than N years" rather than spilling into March.
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def hot_dates(start: date, end: date) -> list[HotDate]:
    """Every hot date from ``start`` to ``end`` inclusive, sorted by day.

    Each day appears once, with all its kinds merged. The range may span at most
    :data:`MAX_RANGE_YEARS` calendar years: ``end`` may be as late as the same
    date three years after ``start`` (2026-01-01 .. 2029-01-01 is accepted,
    2026-01-01 .. 2029-01-02 is not). Raises ValueError for a longer range or
    when ``end`` is before ``start``, both of which are caller bugs.
    """
    if end < start:
        raise ValueError(f"range ends before it starts: {start} .. {end}")
    if start.year + MAX_RANGE_YEARS <= date.max.year:
        limit = _add_years(start, MAX_RANGE_YEARS)
        if end > limit:
            raise ValueError(
                f"range {start} .. {end} is longer than {MAX_RANGE_YEARS} years"
                f" (latest end: {limit})"
            )
    # Checking each day (at most ~1100) keeps hot_dates and is_hot on one rule
    # set; the costly lunar part is cached per year.
    days = (start + timedelta(days=offset) for offset in range((end - start).days + 1))
    return [_hot_date(day, kinds) for day in days if (kinds := _kinds_on(day))]
