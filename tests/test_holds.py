"""Holds: a seat held for two-party confirmation is released when the time runs
out, exactly once, and never once the couple has confirmed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from scheduler.settings import get_settings
from tests.helpers import booking_body, gather, make_office, open_slots, person, sms_codes
from tests.test_caps_concurrency import assert_counters_consistent, slug

LATER = timedelta(minutes=16)  # past the office's 15-minute hold


async def _book(client: httpx.AsyncClient, slot_id: int, **kw: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id, **kw))
    assert resp.status_code == 201, resp.text
    return resp.json()


async def _confirm(client: httpx.AsyncClient, reference: str, role: str) -> httpx.Response:
    codes = await sms_codes(reference)
    return await client.post(
        f"/api/v1/appointments/{reference}/confirm", json={"party": role, "code": codes[role]}
    )


async def _status(client: httpx.AsyncClient, held: dict[str, Any]) -> str:
    resp = await client.get(
        f"/api/v1/appointments/{held['reference']}",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["status"])


async def _remaining(client: httpx.AsyncClient, slot_id: int) -> int:
    return {s["id"]: s["remaining"] for s in await open_slots(client)}.get(slot_id, 0)


async def test_unconfirmed_hold_is_released_and_rebookable(client: httpx.AsyncClient) -> None:
    from scheduler.usecases.booking.lifecycle import expire_holds

    await make_office(slot_cap=1)
    slot_id = (await open_slots(client))[0]["id"]
    a, b = person(), person()
    held = await _book(client, slot_id, a=a, b=b)
    # Only one party confirms: not enough.
    assert (await _confirm(client, held["reference"], "a")).status_code == 200
    assert await _remaining(client, slot_id) == 0
    full = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert full.status_code == 409 and slug(full) == "slot-full"

    # Before the hold runs out the job leaves it alone.
    assert await expire_holds(datetime.now(UTC), settings=get_settings()) == 0
    assert await _status(client, held) == "pending_confirmation"

    assert await expire_holds(datetime.now(UTC) + LATER, settings=get_settings()) == 1
    assert await _status(client, held) == "expired"
    assert await _remaining(client, slot_id) == 1
    await assert_counters_consistent()
    # The same two people (their ID claims were released too) take the seat again.
    again = await _book(client, slot_id, a=a, b=b)
    assert again["status"] == "pending_confirmation"
    assert await _remaining(client, slot_id) == 0
    await assert_counters_consistent()


async def test_confirm_after_expiry_is_hold_expired(client: httpx.AsyncClient) -> None:
    from scheduler.usecases.booking.lifecycle import expire_holds

    await make_office(slot_cap=2)
    slot_id = (await open_slots(client))[0]["id"]
    held = await _book(client, slot_id)
    assert await expire_holds(datetime.now(UTC) + LATER, settings=get_settings()) == 1
    for role in ("a", "b"):
        resp = await _confirm(client, held["reference"], role)
        assert resp.status_code == 409, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert slug(resp) == "hold-expired"
    assert await _status(client, held) == "expired"
    assert await _remaining(client, slot_id) == 2
    await assert_counters_consistent()


async def test_confirm_after_the_hold_lapsed_releases_the_seat_itself(
    client: httpx.AsyncClient,
) -> None:
    """The job has not run yet: the late confirmation itself expires the hold."""
    from scheduler.usecases.booking.lifecycle import expire_holds

    await make_office(slot_cap=2, hold_minutes=0)  # every hold has already lapsed
    slot_id = (await open_slots(client))[0]["id"]
    held = await _book(client, slot_id)
    assert await _remaining(client, slot_id) == 1
    resp = await _confirm(client, held["reference"], "a")
    assert resp.status_code == 409 and slug(resp) == "hold-expired"
    assert await _status(client, held) == "expired"
    assert await _remaining(client, slot_id) == 2
    # Nothing left for the job: the seat is not given back a second time.
    assert await expire_holds(datetime.now(UTC) + LATER, settings=get_settings()) == 0
    assert await _remaining(client, slot_id) == 2
    await assert_counters_consistent()


async def test_confirmed_booking_is_never_expired(client: httpx.AsyncClient) -> None:
    from scheduler.usecases.booking.lifecycle import expire_holds

    await make_office(slot_cap=2)
    slot_id = (await open_slots(client))[0]["id"]
    held = await _book(client, slot_id)
    for role in ("a", "b"):
        assert (await _confirm(client, held["reference"], role)).status_code == 200
    assert await _status(client, held) == "confirmed"
    for later in (LATER, timedelta(days=1), timedelta(days=60)):
        assert await expire_holds(datetime.now(UTC) + later, settings=get_settings()) == 0
    assert await _status(client, held) == "confirmed"
    assert await _remaining(client, slot_id) == 1
    await assert_counters_consistent()


async def test_expiry_twice_releases_each_seat_once(client: httpx.AsyncClient) -> None:
    """Other couples stay on the same slot, so a second release of a seat would
    show as a counter below the real count (not hidden by the floor at zero)."""
    from scheduler.usecases.booking.lifecycle import expire_holds

    await make_office(slot_cap=10)
    slot_id = (await open_slots(client))[0]["id"]
    keep = [await _book(client, slot_id) for _ in range(4)]
    for held in keep:
        for role in ("a", "b"):
            assert (await _confirm(client, held["reference"], role)).status_code == 200
    lapse = [await _book(client, slot_id) for _ in range(4)]
    now = datetime.now(UTC) + LATER

    assert await expire_holds(now, settings=get_settings()) == len(lapse)
    assert await expire_holds(now, settings=get_settings()) == 0
    assert await _remaining(client, slot_id) == 10 - len(keep)
    totals = await assert_counters_consistent()
    assert totals["active"] == len(keep)
    assert [await _status(client, h) for h in lapse] == ["expired"] * len(lapse)


async def test_concurrent_expiry_jobs_and_confirmations(client: httpx.AsyncClient) -> None:
    """Two expiry jobs and the couples' confirmations race; every hold ends either
    confirmed (seat kept) or expired (seat released exactly once)."""
    from scheduler.usecases.booking.lifecycle import expire_holds

    await make_office(slot_cap=20)
    slot_id = (await open_slots(client))[0]["id"]
    keep = [await _book(client, slot_id) for _ in range(3)]
    for held in keep:
        for role in ("a", "b"):
            assert (await _confirm(client, held["reference"], role)).status_code == 200
    racing = [await _book(client, slot_id) for _ in range(12)]
    for held in racing:  # party a confirmed in time; b confirms during the race
        assert (await _confirm(client, held["reference"], "a")).status_code == 200
    codes = {h["reference"]: await sms_codes(h["reference"]) for h in racing}
    now = datetime.now(UTC) + LATER

    confirms = [
        client.post(
            f"/api/v1/appointments/{h['reference']}/confirm",
            json={"party": "b", "code": codes[h["reference"]]["b"]},
        )
        for h in racing
    ]
    released_a, released_b, *responses = await gather(
        expire_holds(now, settings=get_settings()),
        expire_holds(now, settings=get_settings()),
        *confirms,
    )

    for resp in responses:
        assert resp.status_code in (200, 409), resp.text
        if resp.status_code == 409:
            assert slug(resp) == "hold-expired"
        else:  # a confirmation that lost the race says so, it does not answer 200
            assert resp.json()["status"] == "confirmed", resp.text
    statuses = [await _status(client, h) for h in racing]
    assert set(statuses) <= {"confirmed", "expired"}
    for resp, final in zip(responses, statuses, strict=True):
        if resp.status_code == 200 and resp.json()["status"] == "confirmed":
            assert final == "confirmed", "a booking confirmed to the couple was expired"
    assert released_a + released_b == statuses.count("expired")
    totals = await assert_counters_consistent()
    assert totals["active"] == len(keep) + statuses.count("confirmed")
    assert await _remaining(client, slot_id) == 20 - totals["active"]
    # Whatever is left pending is gone after one more run; nothing is released twice.
    assert await expire_holds(now, settings=get_settings()) == 0
    await assert_counters_consistent()


async def test_lapsed_confirmations_racing_the_job_release_once(client: httpx.AsyncClient) -> None:
    """Holds that lapsed before the job ran: the late confirmations and two jobs
    all try to expire the same holds at once."""
    from scheduler.db.tables import Office
    from scheduler.usecases.booking.lifecycle import expire_holds

    office_id = await make_office(slot_cap=20)
    slot_id = (await open_slots(client))[0]["id"]
    # A confirmed couple on the same slot keeps the counter off its floor of zero.
    stay = await _book(client, slot_id)
    for role in ("a", "b"):
        assert (await _confirm(client, stay["reference"], role)).status_code == 200
    # From now on every hold has lapsed as soon as it is made.
    await Office.update({Office.hold_minutes: 0}).where(Office.id == office_id)
    racing = [await _book(client, slot_id) for _ in range(10)]
    codes = {h["reference"]: await sms_codes(h["reference"]) for h in racing}
    now = datetime.now(UTC) + LATER

    calls: list[Any] = [
        expire_holds(now, settings=get_settings()),
        expire_holds(now, settings=get_settings()),
    ]
    calls += [
        client.post(
            f"/api/v1/appointments/{h['reference']}/confirm",
            json={"party": role, "code": codes[h["reference"]][role]},
        )
        for h in racing
        for role in ("a", "b")
    ]
    released_a, released_b, *responses = await asyncio.gather(*calls)

    assert all(r.status_code == 409 and slug(r) == "hold-expired" for r in responses)
    assert [await _status(client, h) for h in racing] == ["expired"] * len(racing)
    assert released_a + released_b <= len(racing)
    assert await _status(client, stay) == "confirmed"
    totals = await assert_counters_consistent()
    assert totals["active"] == 1
    assert await _remaining(client, slot_id) == 19
