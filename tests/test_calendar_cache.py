"""Availability a cache can serve: ETag, Last-Modified, Cache-Control and 304 from a
real server started with the cache on; the cache's freshness bound; one computation for
many concurrent misses."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import booking_body, make_office
from tests.servers import running_server

# Long enough for a booking and a read to fit inside it on a busy CI machine.
TTL = 4


def _month() -> dict[str, str]:
    start = date.today() + timedelta(days=2)
    return {
        "service": "marriage",
        "from": start.isoformat(),
        "to": (start + timedelta(days=27)).isoformat(),
    }


@pytest.fixture
async def server(
    db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    await make_office(slot_cap=5)
    monkeypatch.setenv("AVAILABILITY_CACHE_SECONDS", str(TTL))
    async with (
        running_server(tmp_path / "server.log") as running,
        httpx.AsyncClient(base_url=running.base, timeout=30) as client,
    ):
        yield client


URL = "/api/v1/offices/GZ-TH/availability"


def _first_open(body: dict[str, Any]) -> dict[str, Any]:
    return next(s for d in body["days"] if d["status"] == "open" for s in d["slots"])


async def test_validators_and_304_on_the_running_server(server: httpx.AsyncClient) -> None:
    first = await server.get(URL, params=_month())
    assert first.status_code == 200
    assert first.headers["cache-control"] == f"public, max-age={TTL}"
    assert "accept-language" in first.headers["vary"].lower()
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and etag.endswith('"')

    same = await server.get(URL, params=_month(), headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == etag
    weak = await server.get(URL, params=_month(), headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    since = await server.get(URL, params=_month(), headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    other = await server.get(URL, params=_month(), headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.json() == first.json()
    # Another language is another answer (the reasons of closed days are translated).
    english = await server.get(URL, params=_month(), headers={"Accept-Language": "en"})
    assert english.status_code == 200


async def test_a_booking_shows_within_the_max_age_and_changes_the_etag(
    server: httpx.AsyncClient,
) -> None:
    before = await server.get(URL, params=_month())
    slot = _first_open(before.json())
    booked = await server.post(
        "/api/v1/appointments",
        json=booking_body(slot["id"]),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert booked.status_code == 201, booked.text
    # Inside max-age the process answers what it computed: a few seconds old at most.
    cached = await server.get(URL, params=_month())
    assert cached.headers["etag"] == before.headers["etag"]
    await asyncio.sleep(TTL + 0.5)
    revalidate = {"If-None-Match": before.headers["etag"]}
    after = await server.get(URL, params=_month(), headers=revalidate)
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert _first_open(after.json())["remaining"] == slot["remaining"] - 1


async def test_an_unchanged_calendar_keeps_its_validators_after_expiry(
    server: httpx.AsyncClient,
) -> None:
    first = await server.get(URL, params=_month())
    await asyncio.sleep(TTL + 0.5)
    again = await server.get(URL, params=_month(), headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["last-modified"] == first.headers["last-modified"]


async def test_concurrent_misses_share_one_computation(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.app import create_app
    from scheduler.settings import get_settings
    from scheduler.usecases.calendar import slots

    await make_office()
    calls = 0
    real = slots.availability

    async def counted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(slots, "availability", counted)
    app = create_app(dataclasses.replace(get_settings(), availability_cache_seconds=30))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = await asyncio.gather(*(client.get(URL, params=_month()) for _ in range(20)))
        assert {a.status_code for a in answers} == {200}
        assert len({a.headers["etag"] for a in answers}) == 1
        assert calls == 1
        # A bad request is not cached as an answer: each gets its own 4xx.
        bad = await client.get(URL, params={"service": "nope"})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
