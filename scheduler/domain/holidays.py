"""The working calendar as data: State Council holiday notices and the statutory days.

Pure: no I/O, no clock. A notice (国务院办公厅关于YYYY年部分节假日安排的通知) names
blocks of days off (放假调休: every day of a block is closed, weekends included)
and make-up working days (调休上班). A year with no notice loaded falls back to
the statutory days of the 全国年节及纪念日放假办法 only (``StatutoryRules``): no
block is guessed and no make-up day invented, and admins are warned.

Notices come from files shipped in ``config/holidays/`` and from rows a
superadmin loaded (scheduler/usecases/calendar/holidays.py); both go through ``parse_notice``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

from lunar_python import Lunar

DayKind = Literal["workday", "weekend", "holiday", "makeup_workday"]

FIRST_YEAR = 2025  # the amended statutory days (and so our rules) start here
MAX_BLOCK_DAYS = 14  # the longest block ever announced is 9 days (Spring Festival 2026)
_URL = re.compile(r"^https?://[^\s<>\"']{1,490}$")


class NoticeError(ValueError):
    """A notice that cannot be loaded: ``field`` names where, ``reason`` says why."""

    def __init__(self, field_name: str, reason: str, **params: Any) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class StatutoryHoliday:
    key: str
    rule: str  # solar | lunar | solar_term
    days: int
    month: int = 0
    day: int = 0
    offset: int = 0
    term: str = ""

    def first_day(self, year: int) -> date:
        if self.rule == "solar":
            return date(year, self.month, self.day)
        if self.rule == "lunar":
            return _lunar(year, self.month, self.day) + timedelta(days=self.offset)
        return _solar_term(year, self.term)


@dataclass(frozen=True)
class StatutoryRules:
    title: str
    source: str
    effective_from: date
    holidays: tuple[StatutoryHoliday, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(h.key for h in self.holidays)

    def by_holiday(self, year: int) -> dict[str, list[date]]:
        """Holiday key -> its statutory days off in ``year`` (two may share a day:
        Mid-Autumn on 3 October 2028)."""
        return {
            h.key: [h.first_day(year) + timedelta(days=i) for i in range(h.days)]
            for h in self.holidays
        }

    def days(self, year: int) -> dict[date, str]:
        """Statutory days off of ``year`` -> (the first) holiday key."""
        found: dict[date, str] = {}
        for key, days in self.by_holiday(year).items():
            for day in days:
                found.setdefault(day, key)
        return found


@lru_cache(maxsize=256)
def _lunar(year: int, month: int, day: int) -> date:
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


@lru_cache(maxsize=64)
def _solar_term(year: int, term: str) -> date:
    # The jieqi table of lunar year ``year`` holds the solar terms of solar year
    # ``year`` from 小寒 on (清明 always falls in early April).
    solar = Lunar.fromYmd(year, 1, 1).getJieQiTable()[term]
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def parse_statutory(raw: Mapping[str, Any]) -> StatutoryRules:
    holidays = []
    for item in raw["holiday"]:
        rule = str(item["rule"])
        if rule not in ("solar", "lunar", "solar_term"):
            raise ValueError(f"unknown statutory rule {rule!r}")
        holidays.append(
            StatutoryHoliday(
                key=str(item["key"]),
                rule=rule,
                days=int(item["days"]),
                month=int(item.get("month", 0)),
                day=int(item.get("day", 0)),
                offset=int(item.get("offset", 0)),
                term=str(item.get("term", "")),
            )
        )
    return StatutoryRules(
        title=str(raw["title"]),
        source=str(raw["source"]),
        effective_from=_as_date(raw["effective_from"], "effective_from"),
        holidays=tuple(holidays),
    )


@dataclass(frozen=True)
class Block:
    holidays: tuple[str, ...]
    start: date
    end: date
    makeup: tuple[date, ...] = ()

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class Notice:
    year: int
    title: str
    document_number: str
    published_on: date
    url: str
    blocks: tuple[Block, ...]

    def holidays(self) -> dict[date, tuple[str, ...]]:
        return {day: b.holidays for b in self.blocks for day in b.days()}

    def makeup_days(self) -> frozenset[date]:
        return frozenset(day for b in self.blocks for day in b.makeup)

    def as_data(self) -> dict[str, Any]:
        """JSON-ready, in the shape ``parse_notice`` reads (API, table, files alike)."""
        return {
            "year": self.year,
            "title": self.title,
            "document_number": self.document_number,
            "published_on": self.published_on.isoformat(),
            "url": self.url,
            "blocks": [
                {
                    "holidays": list(b.holidays),
                    "from": b.start.isoformat(),
                    "to": b.end.isoformat(),
                    "makeup": [d.isoformat() for d in b.makeup],
                }
                for b in self.blocks
            ],
        }


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise NoticeError(where, "holiday-date-format")


def _text(raw: Mapping[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = raw.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise NoticeError(key, "holiday-text-format")
    value = value.strip()
    if required and not value:
        raise NoticeError(key, "required")
    if len(value) > limit or not value.isprintable():
        raise NoticeError(key, "holiday-text-format")
    return value


def parse_notice(raw: Mapping[str, Any], rules: StatutoryRules, today: date) -> Notice:
    """A checked notice, or NoticeError naming the first problem.

    Checks what a typo would break: the year's statutory days all fall inside the
    blocks that name them (a wrong year or month shows at once), blocks do not
    overlap, are at most ``MAX_BLOCK_DAYS`` long and near their year, make-up days
    are weekend days outside every block, and the notice is not dated in the future.
    """
    if not isinstance(raw, Mapping):
        raise NoticeError("notice", "holiday-object-required")
    year = raw.get("year")
    if isinstance(year, bool) or not isinstance(year, int):
        raise NoticeError("year", "holiday-year-format")
    if not FIRST_YEAR <= year <= today.year + 2:
        raise NoticeError("year", "holiday-year-range", first=FIRST_YEAR, last=today.year + 2)
    title = _text(raw, "title", 200, required=True)
    number = _text(raw, "document_number", 64, required=False)
    url = _text(raw, "url", 500, required=False)
    if url and not _URL.match(url):
        raise NoticeError("url", "holiday-url-format")
    published = _as_date(raw.get("published_on"), "published_on")
    if published > today or published.year < year - 2:
        raise NoticeError("published_on", "holiday-published-range")
    items = raw.get("blocks", raw.get("block"))
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise NoticeError("blocks", "holiday-blocks-required")
    if len(items) > 20:
        raise NoticeError("blocks", "holiday-too-many-blocks")
    low, high = date(year - 1, 12, 1), date(year + 1, 1, 31)
    blocks = [_block(item, i, rules, low, high) for i, item in enumerate(items)]
    blocks.sort(key=lambda b: b.start)
    _check_blocks(blocks, rules, year)
    return Notice(year, title, number, published, url, tuple(blocks))


def _block(item: Any, index: int, rules: StatutoryRules, low: date, high: date) -> Block:
    where = f"blocks[{index}]"
    if not isinstance(item, Mapping):
        raise NoticeError(where, "holiday-object-required")
    names = item.get("holidays")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Sequence) or not names:
        raise NoticeError(f"{where}.holidays", "holiday-holidays-required")
    if any(n not in rules.keys for n in names) or len(set(names)) != len(names):
        raise NoticeError(f"{where}.holidays", "holiday-unknown", known=", ".join(rules.keys))
    start = _as_date(item.get("from"), f"{where}.from")
    end = _as_date(item.get("to"), f"{where}.to")
    if end < start:
        raise NoticeError(f"{where}.to", "range-order")
    if (end - start).days + 1 > MAX_BLOCK_DAYS:
        raise NoticeError(f"{where}.to", "holiday-block-too-long", days=MAX_BLOCK_DAYS)
    if start < low or end > high:
        raise NoticeError(f"{where}.from", "holiday-block-out-of-year")
    raw_makeup = item.get("makeup") or []
    if isinstance(raw_makeup, str) or not isinstance(raw_makeup, Sequence):
        raise NoticeError(f"{where}.makeup", "holiday-date-format")
    makeup = sorted({_as_date(d, f"{where}.makeup") for d in raw_makeup})
    for day in makeup:
        if day.weekday() < 5:
            raise NoticeError(f"{where}.makeup", "holiday-makeup-not-weekend", date=day.isoformat())
        if not low <= day <= high:
            raise NoticeError(f"{where}.makeup", "holiday-block-out-of-year")
    order = {k: i for i, k in enumerate(rules.keys)}
    return Block(tuple(sorted(names, key=order.__getitem__)), start, end, tuple(makeup))


def _check_blocks(blocks: list[Block], rules: StatutoryRules, year: int) -> None:
    for before, after in pairwise(blocks):
        if after.start <= before.end:
            raise NoticeError("blocks", "holiday-blocks-overlap", date=after.start.isoformat())
    closed = {day for b in blocks for day in b.days()}
    for b in blocks:
        for day in b.makeup:
            if day in closed:
                raise NoticeError("blocks", "holiday-makeup-in-block", date=day.isoformat())
    named = [k for b in blocks for k in b.holidays]
    missing = [k for k in rules.keys if k not in named]
    if missing or len(named) != len(set(named)):
        raise NoticeError("blocks", "holiday-once", holiday=(missing or named)[0])
    block_of = {k: b for b in blocks for k in b.holidays}
    for key, days in rules.by_holiday(year).items():
        b = block_of[key]
        for day in days:
            if b.start <= day <= b.end:
                continue
            raise NoticeError(
                "blocks", "holiday-statutory-day-outside", holiday=key, date=day.isoformat()
            )


@dataclass(frozen=True)
class WorkCalendar:
    """Which local dates are holidays or make-up working days, for any year.

    Years with a notice follow it; other years have the statutory days only.
    """

    rules: StatutoryRules
    notices: Mapping[int, Notice] = field(default_factory=dict)

    def covered(self, year: int) -> bool:
        return year in self.notices

    @property
    def _days(self) -> tuple[dict[date, tuple[str, ...]], frozenset[date]]:
        return _expand(self.rules, tuple(sorted(self.notices.items())))

    def kind(self, day: date) -> DayKind:
        holidays, makeup = self._days
        if day in holidays or (not self.covered(day.year) and self._statutory(day)):
            return "holiday"
        if day in makeup:
            return "makeup_workday"
        return "weekend" if day.weekday() >= 5 else "workday"

    def holiday_names(self, day: date) -> tuple[str, ...]:
        """Keys of the holidays that close ``day`` (empty when it is not a holiday)."""
        holidays, _ = self._days
        if day in holidays:
            return holidays[day]
        if not self.covered(day.year):
            key = self._statutory(day)
            return (key,) if key else ()
        return ()

    def _statutory(self, day: date) -> str | None:
        if day.year < self.rules.effective_from.year:
            return None
        return _statutory_days(self.rules, day.year).get(day)

    def missing_years(self, years: Iterable[int]) -> list[int]:
        return sorted({y for y in years if y >= FIRST_YEAR and not self.covered(y)})


@lru_cache(maxsize=64)
def _statutory_days(rules: StatutoryRules, year: int) -> dict[date, str]:
    return rules.days(year)


@lru_cache(maxsize=16)
def _expand(
    rules: StatutoryRules, notices: tuple[tuple[int, Notice], ...]
) -> tuple[dict[date, tuple[str, ...]], frozenset[date]]:
    # A notice may reach into the neighbouring year (a New Year block starting on
    # 30 December): its days count wherever they fall.
    holidays: dict[date, tuple[str, ...]] = {}
    makeup: set[date] = set()
    for _, notice in notices:
        holidays.update(notice.holidays())
        makeup |= notice.makeup_days()
    return holidays, frozenset(makeup - holidays.keys())
