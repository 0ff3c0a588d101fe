"""Bad requests get the right status and an RFC 9457 problem in the caller's
language, and change nothing that is stored."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.helpers import booking_body, make_office, open_slots, person

CJK = re.compile(r"[\u4e00-\u9fff]")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _days_ahead_with_open_extra_day() -> int:
    """A short booking window whose extra generated day (the one past the window)
    is not a public holiday, so slots exist that are not bookable yet."""
    from scheduler.domain.calendar import day_kind, last_bookable_day
    from scheduler.domain.holidays import WorkCalendar
    from scheduler.usecases.calendar.holidays import shipped_notices, statutory_rules

    calendar = WorkCalendar(statutory_rules(), shipped_notices())
    now = datetime.now(UTC)
    # From 10: the window must still hold open weekdays after open_slots' first day
    # (today + 2) whatever the weekday and the hour (before or after 08:30) today.
    for days_ahead in range(10, 40):
        extra = last_bookable_day(now, SHANGHAI, days_ahead, time(8, 30)) + timedelta(days=1)
        if day_kind(extra, calendar) != "holiday":
            return days_ahead
    raise AssertionError("no usable booking window")  # pragma: no cover


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    """One office with a booking in place, plus a past slot and a not-yet-open slot."""
    from scheduler.db.tables import Office, Slot
    from scheduler.domain.calendar import last_bookable_day
    from scheduler.usecases.calendar.slots import generate_slots

    days_ahead = _days_ahead_with_open_extra_day()
    office_id = await make_office(slot_cap=10, days_ahead=days_ahead)
    # Slots as the job would have made them three days ago: some are past now.
    now = datetime.now(UTC)
    await generate_slots(now - timedelta(days=3))
    past = await Slot.select().where((Slot.office == office_id) & (Slot.start_at < now)).first()
    office = await Office.select().where(Office.id == office_id).first()
    last = last_bookable_day(now, SHANGHAI, office["booking_days_ahead"], time(8, 30))
    beyond = await Slot.select().where((Slot.office == office_id) & (Slot.day > last)).first()
    assert past is not None and beyond is not None
    slots = await open_slots(client)
    resp = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"]))
    assert resp.status_code == 201, resp.text
    return {"slot": slots[1]["id"], "past": past["id"], "beyond": beyond["id"]}


async def _stored() -> dict[str, int]:
    from scheduler.db.tables import (
        Appointment,
        IdClaim,
        OfficeDay,
        OnsiteWindow,
        OutboxMessage,
        Party,
        Slot,
    )

    return {
        "appointment": await Appointment.count(),
        "party": await Party.count(),
        "outbox_message": await OutboxMessage.count(),
        "id_claim": await IdClaim.count(),
        "slot.booked": sum(r["booked"] for r in await Slot.select(Slot.booked)),
        "office_day.booked": sum(r["booked"] for r in await OfficeDay.select(OfficeDay.booked)),
        "onsite_window.people": sum(
            r["people"] for r in await OnsiteWindow.select(OnsiteWindow.people)
        ),
    }


Request = tuple[str, str, dict[str, Any]]


def _book(body: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], Request]:
    return lambda w: ("POST", "/api/v1/appointments", {"json": body(w)})


def _party_with(**changes: Any) -> dict[str, Any]:
    return person() | changes


def _bad_checksum() -> dict[str, str]:
    p = person()
    last = p["id_number"][-1]
    return p | {"id_number": p["id_number"][:-1] + ("0" if last != "0" else "1")}


def _availability(**params: str) -> Callable[[dict[str, Any]], Request]:
    return lambda w: (
        "GET",
        "/api/v1/offices/GZ-TH/availability",
        {"params": {"service": "marriage"} | params},
    )


TODAY = date.today()


@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[dict[str, Any]], Request]
    status: int
    slug: str
    field: str | None = None


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


CASES = [
    Case(
        "malformed-json",
        lambda w: (
            "POST",
            "/api/v1/appointments",
            {
                "content": b'{"slot_id": 1, "party_a": {',
                "headers": {"content-type": "application/json"},
            },
        ),
        422,
        "invalid-input",
    ),
    Case(
        "unknown-top-level-field",
        _book(lambda w: booking_body(w["slot"], note="hi")),
        422,
        "invalid-input",
    ),
    Case(
        "unknown-party-field",
        _book(lambda w: booking_body(w["slot"], a=_party_with(email="a@example.com"))),
        422,
        "invalid-input",
    ),
    Case(
        "missing-party-b",
        _book(lambda w: _without(booking_body(w["slot"]), "party_b")),
        422,
        "invalid-input",
    ),
    Case(
        "third-party",
        _book(lambda w: booking_body(w["slot"], party_c=person())),
        422,
        "invalid-input",
    ),
    Case("slot-id-not-a-number", _book(lambda w: booking_body("first")), 422, "invalid-input"),
    Case(
        "unknown-service",
        _book(lambda w: booking_body(w["slot"], service="wedding")),
        422,
        "invalid-input",
    ),
    Case(
        "unknown-locale",
        _book(lambda w: booking_body(w["slot"], locale="fr")),
        422,
        "invalid-input",
    ),
    Case(
        "unknown-slot",
        _book(lambda w: booking_body(2_000_000_000)),
        422,
        "invalid-input",
        "slot_id",
    ),
    Case(
        "short-idempotency-key",
        lambda w: (
            "POST",
            "/api/v1/appointments",
            {"json": booking_body(w["slot"]), "headers": {"Idempotency-Key": "x"}},
        ),
        422,
        "invalid-input",
        "Idempotency-Key",
    ),
    Case("bad-from-date", _availability(**{"from": "2026-02-30"}), 422, "invalid-input"),
    Case(
        "to-before-from",
        _availability(
            **{
                "from": (TODAY + timedelta(days=5)).isoformat(),
                "to": (TODAY + timedelta(days=4)).isoformat(),
            }
        ),
        422,
        "invalid-input",
        "to",
    ),
    Case(
        "range-over-62-days",
        _availability(
            **{"from": TODAY.isoformat(), "to": (TODAY + timedelta(days=62)).isoformat()}
        ),
        422,
        "invalid-input",
        "to",
    ),
    Case(
        "availability-unknown-service",
        _availability(service="ceremony"),
        422,
        "invalid-input",
        "service",
    ),
    Case(
        "unknown-office",
        lambda w: (
            "GET",
            "/api/v1/offices/XX-NONE/availability",
            {"params": {"service": "marriage"}},
        ),
        404,
        "not-found",
    ),
    Case("past-slot", _book(lambda w: booking_body(w["past"])), 409, "date-closed"),
    Case(
        "beyond-booking-window", _book(lambda w: booking_body(w["beyond"])), 409, "booking-not-open"
    ),
    Case(
        "invalid-id-checksum",
        _book(lambda w: booking_body(w["slot"], a=_bad_checksum())),
        422,
        "invalid-input",
        "party_a.id_number",
    ),
    Case(
        "landline-phone",
        _book(lambda w: booking_body(w["slot"], b=_party_with(phone="+861012345678"))),
        422,
        "invalid-input",
        "party_b.phone",
    ),
    Case(
        "service-mismatch",
        _book(lambda w: booking_body(w["slot"], service="divorce")),
        422,
        "invalid-input",
        "service",
    ),
    Case(
        "same-person-twice",
        _book(lambda w: (lambda p: booking_body(w["slot"], a=p, b=dict(p)))(person())),
        422,
        "invalid-input",
        "party_b.id_number",
    ),
    # NUL characters: PostgreSQL refuses them in text, so they must be caught
    # before any query (a 500 on PostgreSQL and a stored NUL on SQLite otherwise).
    Case(
        "nul-in-name",
        _book(lambda w: booking_body(w["slot"], a=_party_with(name="张\x00三"))),
        422,
        "invalid-input",
        "party_a.name",
    ),
    Case("nul-in-service-query", _availability(service="marr\x00iage"), 422, "invalid-input"),
    Case(
        "nul-in-office-code",
        lambda w: (
            "GET",
            "/api/v1/offices/GZ%00TH/availability",
            {"params": {"service": "marriage"}},
        ),
        404,
        "not-found",
    ),
    Case(
        "nul-in-reference",
        lambda w: (
            "GET",
            "/api/v1/appointments/GZTH-%00",
            {"headers": {"X-Manage-Token": "t" * 40}},
        ),
        404,
        "not-found",
    ),
    Case(
        "nul-in-reference-confirm",
        lambda w: (
            "POST",
            "/api/v1/appointments/GZTH-%00/confirm",
            {"json": {"party": "a", "code": "123456"}},
        ),
        404,
        "not-found",
    ),
    Case(
        "nul-in-reference-cancel",
        lambda w: (
            "POST",
            "/api/v1/appointments/GZTH-%00/cancel",
            {"headers": {"X-Manage-Token": "t" * 40}},
        ),
        404,
        "not-found",
    ),
    Case(
        "nul-in-reference-move",
        lambda w: (
            "POST",
            "/api/v1/appointments/GZTH-%00/move",
            {"json": {"slot_id": w["slot"]}, "headers": {"X-Manage-Token": "t" * 40}},
        ),
        404,
        "not-found",
    ),
    Case(
        "unknown-reference",
        lambda w: (
            "GET",
            "/api/v1/appointments/GZTH-0000-0000",
            {"headers": {"X-Manage-Token": "t" * 40}},
        ),
        404,
        "not-found",
    ),
]


async def _check(client: httpx.AsyncClient, world: dict[str, Any], case: Case) -> None:
    before = await _stored()
    method, url, kwargs = case.request(world)
    details = {}
    for language in (None, "en"):
        headers = dict(kwargs.get("headers", {}))
        if language:
            headers["Accept-Language"] = language
        resp = await client.request(method, url, **(kwargs | {"headers": headers}))

        assert resp.status_code == case.status, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = resp.json()
        assert {"type", "title", "status", "detail"} <= problem.keys()
        assert problem["type"].endswith("/" + case.slug), problem
        assert problem["status"] == case.status
        assert problem["title"] and problem["detail"]
        if case.field is not None:
            assert problem.get("field") == case.field, problem
        details[language] = problem["detail"]
        assert await _stored() == before, f"{language or 'default'}: stored data changed"

    assert CJK.search(details[None]), f"default detail is not Chinese: {details[None]!r}"
    assert not CJK.search(details["en"]) and re.search("[A-Za-z]{3}", details["en"]), details["en"]


async def test_bad_requests_are_problems_and_change_nothing(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    """Every case runs against the same stored state (one setup for all of them);
    failures are collected so that one broken case does not hide the others."""
    failures = []
    for case in CASES:
        try:
            await _check(client, world, case)
        except AssertionError as exc:
            failures.append(f"{case.name}: {exc}")
    assert not failures, "\n".join(failures)


async def test_detail_follows_the_language_preference(client: httpx.AsyncClient) -> None:
    """zh-Hant and q-weighted preferences pick the matching catalog."""
    await make_office()
    url = "/api/v1/offices/XX-NONE/availability"
    seen = {}
    for header in ("en-GB,en;q=0.9", "zh-TW", "fr, en;q=0.5", "de", "zh-CN,en;q=0.1"):
        resp = await client.get(
            url, params={"service": "marriage"}, headers={"Accept-Language": header}
        )
        assert resp.status_code == 404
        seen[header] = resp.json()["detail"]
    assert seen["en-GB,en;q=0.9"] == seen["fr, en;q=0.5"]
    assert not CJK.search(seen["en-GB,en;q=0.9"])
    assert seen["de"] == seen["zh-CN,en;q=0.1"]  # no supported language: the default, zh-Hans
    assert CJK.search(seen["zh-TW"]) and seen["zh-TW"] != seen["de"]
