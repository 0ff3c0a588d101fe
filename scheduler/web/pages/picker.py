"""The month and slot picker shared by booking and moving: a calendar model built
from ``slots.availability`` and the response that swaps it in place under HTMX."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request
from litestar.response import Template

from scheduler.kernel.errors import DomainError
from scheduler.usecases.calendar import slots
from scheduler.web.calendar_cache import CalendarCache
from scheduler.web.pages.common import render

# The five statuses availability gives today, in the order the legend shows them;
# any other status a day carries (blackout, lottery, ...) is appended after them.
LEGEND = ("open", "full", "closed", "not_yet_open", "past")
PICKABLE = ("open", "full")  # days whose slots are listed (a full day shows why)
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("invalid-input", field="day") from None


def _parse_month(value: str | None, chosen: date | None) -> date | None:
    if not value:
        return chosen.replace(day=1) if chosen else None
    match = _MONTH_RE.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        return date(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise DomainError("invalid-input", field="month") from None


def _month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


async def month_view(
    office: str,
    service: str,
    month: str | None,
    day: str | None,
    now: datetime,
    *,
    calendar_cache: CalendarCache | None = None,
    locale: str = "zh-Hans",
) -> dict[str, Any]:
    """The calendar of one month (default: the office's current one) and the chosen day,
    through the availability cache when given (the public month page)."""
    chosen = _parse_day(day)
    first = _parse_month(month, chosen)

    async def read(start: date | None, end: date | None) -> dict[str, Any]:
        if calendar_cache is None:
            return await slots.availability(office, service, start, end, now, locale=locale)
        entry = await calendar_cache.availability(office, service, start, end, now, locale=locale)
        return entry.value

    if first is None:
        # The default range starts at the office's today, which we only learn here.
        result = await read(None, None)
        first = date.fromisoformat(result["from"]).replace(day=1)
    else:
        result = await read(first, _month_end(first))
    return calendar_model(result, first, chosen, now)


def calendar_model(
    result: dict[str, Any], first: date, chosen: date | None, now: datetime
) -> dict[str, Any]:
    today = now.astimezone(ZoneInfo(result["office"]["timezone"])).date()
    by_date = {d["date"]: d for d in result["days"]}
    last = _month_end(first)

    def day_of(when: date) -> dict[str, Any]:
        found = by_date.get(when.isoformat())
        if found is None:  # outside the range availability covered
            status = "past" if when < today else "not_yet_open"
            found = {"date": when.isoformat(), "status": status, "reason": None, "slots": []}
        return found | {"num": when.day, "pickable": found["status"] in PICKABLE}

    weeks = [
        [day_of(d) if d.month == first.month else None for d in week]
        for week in calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    ]
    seen = {d["status"] for week in weeks for d in week if d}
    previous = (first - timedelta(days=1)).replace(day=1)
    return {
        "office": result["office"],
        "service": result["service"],
        "month": f"{first:%Y-%m}",
        "year": first.year,
        "month_num": first.month,
        "weeks": weeks,
        "selected": day_of(chosen) if chosen and first <= chosen <= last else None,
        # An earlier month can hold a bookable day only if this one starts after
        # today; a later one only if this one does not end "not yet open".
        "prev": f"{previous:%Y-%m}" if first > today else None,
        "next": f"{last + timedelta(days=1):%Y-%m}"
        if day_of(last)["status"] != "not_yet_open"
        else None,
        "legend": [*LEGEND, *sorted(seen - set(LEGEND))],
    }


async def find_slot(
    office: str, service: str, day: date, slot_id: int, now: datetime
) -> dict[str, Any]:
    """One slot of one day, with its office, for the booking form's heading."""
    result = await slots.availability(office, service, day, day, now)
    for found in result["days"][0]["slots"] if result["days"] else []:
        if found["id"] == slot_id:
            return {
                "office": result["office"],
                "service": service,
                "date": day.isoformat(),
                **found,
            }
    raise DomainError("invalid-input", field="slot_id", reason="unknown-slot")


def picker_page(
    request: Request[Any, Any, Any], template: str, cal: dict[str, Any], **context: Any
) -> Template:
    """The whole page, or only the picker when htmx swaps it in place. A history
    restore (back button with htmx's cache missed) needs the whole page again."""
    partial = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    # Vary: the browser must not serve a cached fragment for a full navigation.
    return render(
        request,
        "_picker.html" if partial else template,
        headers={"Vary": "HX-Request"},
        cal=cal,
        **context,
    )
