"""The working calendar in force: shipped notices, loaded notices, statutory fallback.

Read side only (slot generation, office regeneration, readiness, the admin
warning). Shipped notices are the files in ``config/holidays/<year>.toml``, read
once per process; a notice a superadmin loaded is a ``holiday_notice`` row and
supersedes the file of its year (scheduler/usecases/offices/holiday_notices.py writes them).
"""

from __future__ import annotations

import time as monotonic
import tomllib
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.holiday_tables import HolidayNotice
from scheduler.db.tables import Office
from scheduler.domain.calendar import last_bookable_day
from scheduler.domain.holidays import (
    Notice,
    StatutoryRules,
    WorkCalendar,
    parse_notice,
    parse_statutory,
)
from scheduler.kernel.i18n import translate

HOLIDAYS_DIR = Path(__file__).resolve().parents[3] / "config" / "holidays"
# Files are curated and reviewed: no "published in the future" check applies to them.
_NO_CLOCK = date(9999, 1, 1)


@cache
def statutory_rules() -> StatutoryRules:
    with (HOLIDAYS_DIR / "statutory.toml").open("rb") as fh:
        return parse_statutory(tomllib.load(fh))


@cache
def shipped_notices() -> dict[int, Notice]:
    """The notices in ``config/holidays/<year>.toml``, checked like a loaded one."""
    rules = statutory_rules()
    notices = {}
    for path in sorted(HOLIDAYS_DIR.glob("[0-9][0-9][0-9][0-9].toml")):
        with path.open("rb") as fh:
            notice = parse_notice(tomllib.load(fh), rules, _NO_CLOCK)
        if str(notice.year) != path.stem:
            raise ValueError(f"{path} holds the notice of {notice.year}")
        notices[notice.year] = notice
    return notices


async def loaded_rows() -> list[dict[str, Any]]:
    """The newest loaded version of each year, as stored."""
    rows = (
        await HolidayNotice.select()
        .order_by(HolidayNotice.year)
        .order_by(HolidayNotice.version)
        .output(load_json=True)
    )
    newest: dict[int, dict[str, Any]] = {}
    for row in rows:
        newest[row["year"]] = row
    return list(newest.values())


async def current() -> WorkCalendar:
    """Files, then loaded rows on top (a row of a year replaces that year's file)."""
    rules = statutory_rules()
    notices = dict(shipped_notices())
    for row in await loaded_rows():
        notices[row["year"]] = parse_notice(row["notice"], rules, _NO_CLOCK)
    return WorkCalendar(rules, notices)


# Availability (a hot path) reads the calendar through this copy, re-read when older
# than CACHE_SECONDS, as policies do: a loaded notice shows there within 5 s everywhere.
CACHE_SECONDS = 5.0
_cache: tuple[float, WorkCalendar] | None = None


async def cached() -> WorkCalendar:
    global _cache
    if _cache is None or monotonic.monotonic() - _cache[0] > CACHE_SECONDS:
        _cache = (monotonic.monotonic(), await current())
    return _cache[1]


def forget() -> None:
    """Drop this process's copy (after loading a notice here)."""
    global _cache
    _cache = None


def reason(calendar: WorkCalendar, day: date, locale: str) -> str:
    """Why ``day`` is closed, in ``locale`` ("国庆节、中秋节放假"); "" if it is no holiday."""
    keys = calendar.holiday_names(day)
    if not keys:
        return ""
    names = translate(locale, "holidays.joiner").join(
        translate(locale, f"holidays.name.{k}") for k in keys
    )
    return translate(locale, "holidays.reason", names=names)


def window_end(office: dict[str, Any], now: datetime) -> date:
    """The last local date slot generation reaches for this office."""
    tz = ZoneInfo(office["timezone"])
    opens = time.fromisoformat(office["booking_opens_at"])
    return last_bookable_day(now, tz, office["booking_days_ahead"], opens) + timedelta(days=1)


async def missing_years(
    now: datetime, calendar: WorkCalendar | None = None
) -> list[dict[str, Any]]:
    """Years the booking window of an active office reaches with no notice loaded:
    ``[{year, reaches, offices}]``. Those years have the statutory days only."""
    calendar = calendar or await current()
    offices = await Office.select(
        Office.code, Office.timezone, Office.booking_days_ahead, Office.booking_opens_at
    ).where(Office.active.eq(True))
    found: dict[int, dict[str, Any]] = {}
    for office in offices:
        today = now.astimezone(ZoneInfo(office["timezone"])).date()
        end = window_end(office, now)
        for year in calendar.missing_years(range(today.year, end.year + 1)):
            entry = found.setdefault(year, {"year": year, "reaches": end, "offices": []})
            entry["reaches"] = max(entry["reaches"], end)
            entry["offices"].append(office["code"])
    return [
        {"year": y, "reaches": e["reaches"].isoformat(), "offices": sorted(e["offices"])}
        for y, e in sorted(found.items())
    ]
