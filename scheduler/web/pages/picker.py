"""The month and slot picker shared by booking and moving: a calendar model built
from ``slots.availability`` and the response that swaps it in place under HTMX."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar, Request
from litestar.enums import MediaType
from litestar.response import Template
from litestar.response.base import ASGIResponse
from litestar.utils.scope.state import ScopeState

from scheduler.kernel.errors import DomainError
from scheduler.usecases.calendar import slots
from scheduler.web.calendar_cache import CalendarCache, RenderedPages, body_etag, etag_matches
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
    request: Request[Any, Any, Any],
    template: str,
    cal: dict[str, Any],
    *,
    pages: RenderedPages | None = None,
    **context: Any,
) -> Template:
    """The whole page, or only the picker when htmx swaps it in place. A history
    restore (back button with htmx's cache missed) needs the whole page again.
    With ``pages`` (public pages only) a page already rendered is served as it was."""
    partial = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    # Vary: the browser must not serve a cached fragment for a full navigation.
    page = render(
        request,
        "_picker.html" if partial else template,
        headers={"Vary": "HX-Request"},
        cal=cal,
        **context,
    )
    if pages is None:
        return page
    return RememberedTemplate(
        pages,
        template_name=page.template_name,
        context=page.context,
        cookies=page.cookies,
        headers=page.headers,
        status_code=page.status_code,
    )


class RememberedTemplate(Template):
    """A template response that renders a page once for all who are shown the same
    thing (RenderedPages): the same body, headers and cookies as Template's."""

    __slots__ = ("pages",)

    def __init__(self, pages: RenderedPages, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages = pages

    def to_asgi_response(
        self, app: Litestar | None, request: Request[Any, Any, Any], **kwargs: Any
    ) -> ASGIResponse:
        key = self.pages.key(str(self.template_name), self.context)
        page = None if key is None else self.pages.get(key)
        if page is None:
            engine = request.app.template_engine
            assert engine is not None  # app.py configures Jinja2
            template = engine.get_template(str(self.template_name))
            body = template.render(**self.create_template_context(request)).encode(self.encoding)
            page = (body, body_etag(body))
            token = ScopeState.from_scope(request.scope).csrf_token
            # A page that carries the client's CSRF token is its own: never shared.
            if key is not None and not (isinstance(token, str) and token.encode() in body):
                self.pages.put(key, *page)
        body, etag = page
        # Still no-store (edge.py): the answer may set the CSRF cookie, which no shared
        # cache may hand to others. The tag serves clients that revalidate anyway.
        fresh = etag_matches(request.headers.get("if-none-match") or "", etag)
        headers = {**kwargs.get("headers", {}), **self.headers, "ETag": etag}
        cookies = kwargs.get("cookies")
        return ASGIResponse(
            background=self.background or kwargs.get("background"),
            body=b"" if fresh else body,
            cookies=self.cookies if cookies is None else [*self.cookies, *cookies],
            encoded_headers=kwargs.get("encoded_headers"),
            encoding=self.encoding,
            headers=headers,
            is_head_response=kwargs.get("is_head_response", False),
            media_type=self.media_type or MediaType.HTML,
            status_code=304 if fresh else self.status_code,
        )
