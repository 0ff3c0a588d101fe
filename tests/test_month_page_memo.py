"""The month page served from what was already rendered (RenderedPages) is the page a
fresh rendering gives, byte for byte, in all three languages, whole and as the htmx
fragment, with and without a chosen day, before and after bookings; a booking that
changes what the page shows is shown at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.tables import Slot
from scheduler.settings import get_settings
from scheduler.usecases.offices import reschedule
from tests.helpers import booking_body, make_office, staff_token

PAGE = "/book/GZ-TH/marriage"
LOCALES = ("zh-Hans", "zh-Hant", "en")
# Two slots a day, one seat each: two bookings fill a day.
MORNING = {str(d): [["09:00", "10:00"]] for d in range(5)}


@pytest.fixture
async def fresh() -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A second app, asked each page once after the first: it renders what it answers."""
    from scheduler.app import create_app

    other = create_app()
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, other.state.calendar.pages


async def _slots(client: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    start = date.today() + timedelta(days=2)
    resp = await client.get(
        "/api/v1/offices/GZ-TH/availability",
        params={"service": "marriage", "from": start.isoformat(), "to": str(start + timedelta(27))},
    )
    assert resp.status_code == 200, resp.text
    return {d["date"]: d["slots"] for d in resp.json()["days"] if d["status"] == "open"}


async def _varied_calendar(client: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    """Open, full, closed (weekends, a blackout with its reason), past and not yet open
    days in this month and the next."""
    await make_office(slot_cap=1, weekly_hours=MORNING, days_ahead=20)
    open_days = await _slots(client)
    days = sorted(open_days)
    for slot in open_days[days[0]]:  # the first open day full
        resp = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
        assert resp.status_code == 201, resp.text
    admin = await staff_token(client, "admin.memo", role="admin")
    closed = {
        "offices": ["GZ-TH"],
        "start_date": days[2],
        "end_date": days[2],
        "kind": "closed",
        "reason": {"zh-Hans": "设备检修", "en": "Equipment <maintenance> & repair"},
    }
    resp = await client.post("/api/v1/admin/blackouts", json=closed, headers=admin)
    assert resp.status_code == 202, resp.text
    for run_id in await reschedule.due_runs(datetime.now(UTC)):
        await reschedule.execute(run_id, "test", datetime.now(UTC), settings=get_settings())
    return await _slots(client)


def _requests(open_day: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    months = dict.fromkeys(
        (f"{date.today():%Y-%m}", open_day[:7], f"{date.today() + timedelta(days=40):%Y-%m}")
    )
    shown: list[dict[str, str]] = [{}, *({"month": m} for m in months)]
    shown.append({"month": open_day[:7], "day": open_day})
    return [
        (locale, params, headers)
        for locale in LOCALES
        for params in shown
        for headers in ({}, {"HX-Request": "true"})
    ]


async def _get(
    client: httpx.AsyncClient, locale: str, params: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    resp = await client.get(PAGE, params=params, headers=headers | {"Cookie": f"lang={locale}"})
    assert resp.status_code == 200, resp.text
    return resp


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.content == b.content
    # New for every answer: the CSRF cookie of a cookieless client, the request id.
    drop = {"set-cookie", "date", "x-request-id"}
    assert {k: v for k, v in a.headers.items() if k not in drop} == {
        k: v for k, v in b.headers.items() if k not in drop
    }


async def test_remembered_pages_are_the_rendered_pages(
    client: httpx.AsyncClient, app: Any, fresh: tuple[httpx.AsyncClient, Any]
) -> None:
    other, other_pages = fresh
    open_days = await _varied_calendar(client)
    open_day = sorted(open_days)[1]
    first = await client.get(PAGE, params={"month": open_day[:7]})
    statuses = {part.split('"', 1)[0] for part in first.text.split('data-status="')[1:]}
    assert {"open", "full", "closed"} <= statuses, statuses
    assert "Equipment" in (await _get(client, "en", {"month": open_day[:7]}, {})).text
    pages = app.state.calendar.pages
    for locale, params, headers in _requests(open_day):
        rendered = await _get(client, locale, params, headers)
        kept = len(pages._pages)
        again = await _get(client, locale, params, headers)
        assert len(pages._pages) == kept  # served as rendered: nothing new was kept
        _same(rendered, again)
        before = len(other_pages._pages)
        _same(again, await _get(other, locale, params, headers))
        assert len(other_pages._pages) == before + 1  # the other app rendered it


async def test_a_booking_the_month_does_not_show_keeps_the_page_one_it_shows_changes_it(
    client: httpx.AsyncClient, fresh: tuple[httpx.AsyncClient, Any]
) -> None:
    other, _ = fresh
    open_days = await _varied_calendar(client)
    open_day = sorted(open_days)[1]
    month = {"month": open_day[:7]}
    chosen = month | {"day": open_day}
    before = {
        locale: (await _get(client, locale, month, {}), await _get(client, locale, chosen, {}))
        for locale in LOCALES
    }
    booked = await client.post(
        "/api/v1/appointments", json=booking_body(open_days[open_day][0]["id"])
    )
    assert booked.status_code == 201, booked.text
    for locale in LOCALES:
        grid, day = before[locale]
        now_grid = await _get(client, locale, month, {})
        now_day = await _get(client, locale, chosen, {})
        # The day is still open: the month grid is the same page as before ...
        _same(grid, now_grid)
        _same(now_grid, await _get(other, locale, month, {}))
        # ... but the chosen day lists one seat fewer, at once.
        assert now_day.content != day.content
        _same(now_day, await _get(other, locale, chosen, {}))
    # The last seat of the day: the grid shows it full, in every language.
    last = open_days[open_day][1]["id"]
    assert (await client.post("/api/v1/appointments", json=booking_body(last))).status_code == 201
    slot = await Slot.select(Slot.booked).where(Slot.id == last).first()
    assert slot["booked"] == 1
    for locale in LOCALES:
        now_grid = await _get(client, locale, month, {})
        assert now_grid.content != before[locale][0].content
        assert f'data-date="{open_day}" data-status="full"' in now_grid.text
        _same(now_grid, await _get(other, locale, month, {}))


async def test_the_language_cookie_is_set_on_a_remembered_page(client: httpx.AsyncClient) -> None:
    await make_office()
    first = await client.get(PAGE, params={"lang": "en"})
    client.cookies.clear()
    again = await client.get(PAGE, params={"lang": "en"})
    assert "lang=en" in first.headers["set-cookie"] and "lang=en" in again.headers["set-cookie"]
    assert first.content == again.content and '<html lang="en">' in again.text


async def test_the_page_is_revalidated_with_its_etag(client: httpx.AsyncClient) -> None:
    open_days = await _varied_calendar(client)
    open_day = sorted(open_days)[1]
    chosen = {"month": open_day[:7], "day": open_day}
    for headers in ({}, {"HX-Request": "true"}):
        first = await client.get(PAGE, params=chosen, headers=headers)
        etag = first.headers["etag"]
        # It may set the CSRF cookie: no shared cache may keep it (edge.py).
        assert first.headers["cache-control"] == "no-store"
        same = await client.get(PAGE, params=chosen, headers=headers | {"If-None-Match": etag})
        assert same.status_code == 304 and same.content == b""
        assert same.headers["etag"] == etag and same.headers["vary"] == "HX-Request"
        other = await client.get(PAGE, params=chosen, headers={"If-None-Match": '"other"'})
        assert other.status_code == 200 and other.content
    full = await client.get(PAGE, params=chosen)
    partial = await client.get(PAGE, params=chosen, headers={"HX-Request": "true"})
    assert full.headers["etag"] != partial.headers["etag"]
    # A booking on the chosen day changes what the page shows: a new tag and the page.
    booked = await client.post(
        "/api/v1/appointments", json=booking_body(open_days[open_day][0]["id"])
    )
    assert booked.status_code == 201, booked.text
    after = await client.get(PAGE, params=chosen, headers={"If-None-Match": full.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != full.headers["etag"]
    assert after.content != full.content
