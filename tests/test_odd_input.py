"""Odd input answers 4xx, never 500: integer path parameters beyond any id (every
``{…:int}`` route of the app, API and pages), dates at the ends of the calendar in
availability and the month pages, JSON nested 100,000 deep."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.helpers import booking_body, make_office, open_slots, staff_token

PROBLEM = "application/problem+json"
HUGE = [2**31, 2**63 + 5, 10**30, -(2**63) - 1]


def _int_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template) of every route with an integer path parameter."""
    found = []
    for route in app.routes:
        if ":int}" not in route.path:
            continue
        for method in sorted(getattr(route, "methods", ())):
            if method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                found.append((method, route.path))
    return found


def _fill(template: str, number: int) -> str:
    def one(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2)
        if kind == "int":
            return str(number)
        if kind == "date":
            return "2026-12-20"
        return "GZ-TH" if name == "office" else "x"

    return re.sub(r"\{(\w+):(\w+)\}", one, template)


async def test_every_int_path_parameter_is_bounded(app: Any, client: httpx.AsyncClient) -> None:
    await make_office()
    auth = await staff_token(client, "root.admin", "superadmin", ())
    routes = _int_routes(app)
    assert len(routes) >= 25  # API and pages (30 today)
    assert any(p.startswith("/api/") for _, p in routes)
    assert any(p.startswith("/staff/") for _, p in routes)
    assert any(p.startswith("/lotteries/") for _, p in routes)
    wrong = []
    for method, template in routes:
        for number in HUGE:
            path = _fill(template, number)
            resp = await client.request(method, path, headers=auth, json={})
            expected_type = PROBLEM if path.startswith("/api/") else "text/html"
            if resp.status_code >= 500 or not resp.headers["content-type"].startswith(
                expected_type
            ):
                wrong.append((method, path, resp.status_code, resp.headers["content-type"]))
            elif method == "GET" and resp.status_code != 404:
                wrong.append((method, path, resp.status_code))
    assert not wrong, wrong


@pytest.mark.parametrize("day", ["9999-12-25", "0001-01-01"])
async def test_far_dates_in_availability_are_invalid_input(
    client: httpx.AsyncClient, day: str
) -> None:
    await make_office()
    for params in ({"from": day}, {"to": day}, {"from": day, "to": day}):
        resp = await client.get(
            "/api/v1/offices/GZ-TH/availability", params={"service": "marriage"} | params
        )
        assert resp.status_code == 422, (params, resp.text)
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["type"].endswith("/invalid-input")


@pytest.mark.parametrize(
    "path",
    [
        "/book/GZ-TH/marriage?month=9999-12",
        "/book/GZ-TH/marriage?month=0001-01",
        "/book/GZ-TH/marriage?day=9999-12-31",
        "/book/GZ-TH/marriage?day=0001-01-01",
        "/book/GZ-TH/marriage/9999-12-31/1",
        "/book/GZ-TH/marriage/0001-01-01/1",
    ],
)
async def test_far_dates_in_month_pages_are_a_readable_4xx(
    client: httpx.AsyncClient, path: str
) -> None:
    await make_office()
    resp = await client.get(path, headers={"Accept-Language": "en"})
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "too far from today" in resp.text


async def test_deeply_nested_json_is_invalid_input(client: httpx.AsyncClient) -> None:
    await make_office()
    auth = await staff_token(client, "root.admin", "superadmin", ())
    for path in ("/api/v1/appointments", "/api/v1/admin/blackouts"):
        resp = await client.post(
            path, content=b"[" * 100_000, headers={"Content-Type": "application/json"} | auth
        )
        assert resp.status_code == 422, (path, resp.text)
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["field"] == "data"


async def test_slot_id_as_a_string_of_digits_is_accepted(client: httpx.AsyncClient) -> None:
    """Lax, as decided in docs/decisions.md: "161" names slot 161; anything else is 422."""
    await make_office()
    slot = (await open_slots(client))[0]["id"]
    held = await client.post("/api/v1/appointments", json=booking_body(str(slot)))
    assert held.status_code == 201, held.text
    for odd in ("16.1", "abc", "", True, 1.5):
        resp = await client.post("/api/v1/appointments", json=booking_body(odd))
        assert resp.status_code == 422, (odd, resp.text)
