"""The order of a booking's early checks (scheduler/usecases/booking/checks.py): a full slot is
refused before the ban lookup and before the per-ID and per-phone counters, yet
every rule still holds for a request that could get a seat, and the per-address
limit counts the refused requests as it counts any other."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from scheduler.db.tables import Appointment
from scheduler.usecases.policy import policies
from tests.helpers import booking_body, make_office, open_slots, person, staff_token
from tests.test_ratelimits import app_with, client_at, fresh_window, slug


@pytest.fixture(autouse=True)
async def fresh_policies() -> AsyncIterator[None]:
    policies.invalidate()
    yield
    policies.invalidate()  # no override leaks into the next test's empty database


async def _ban(client: httpx.AsyncClient, slots: list[dict]) -> dict[str, str]:
    """A person banned by the cancellation rule (two cancellations), through the API."""
    root = await staff_token(client, "root", role="superadmin", offices=())
    rule = {"enabled": True, "no_shows": 2, "cancellations": 2, "window_days": 30, "ban_days": 7}
    put = await client.put("/api/v1/admin/policies/no_show", json=rule, headers=root)
    assert put.status_code == 200, put.text
    banned = person()
    for slot in slots:
        held = await client.post("/api/v1/appointments", json=booking_body(slot["id"], a=banned))
        assert held.status_code == 201, held.text
        gone = await client.post(
            f"/api/v1/appointments/{held.json()['reference']}/cancel",
            headers={"X-Manage-Token": held.json()["manage_token"]},
        )
        assert gone.status_code == 200, gone.text
    return banned


async def test_full_slot_answers_first_and_bans_still_hold(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(slot_cap=1)
    slots = await open_slots(client)
    banned = await _ban(client, slots[1:3])
    taken = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"]))
    assert taken.status_code == 201, taken.text

    on_full = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"], a=banned))
    on_open = await client.post("/api/v1/appointments", json=booking_body(slots[3]["id"], b=banned))
    assert on_full.status_code == 409 and slug(on_full) == "slot-full"
    assert on_open.status_code == 409 and slug(on_open) == "banned", on_open.text
    assert "banned_until" in on_open.json()
    remaining = {s["id"]: s["remaining"] for s in await open_slots(client)}
    assert remaining[slots[3]["id"]] == 1  # the banned couple took no seat
    assert await Appointment.count() == 3  # two cancelled, one held


async def test_refused_for_full_is_not_counted_per_phone(db: None) -> None:
    """A slot-full refusal texts nothing, so it does not use up the person's hourly
    limit; the limit still refuses once holds reach it."""
    await fresh_window(3600, 5)
    await make_office(slot_cap=1)
    app = app_with(rate_limit_sms_per_minute=0, rate_limit_phone_per_hour=1)
    phone = person()["phone"]
    async with client_at(app, "198.51.100.70") as c:
        slots = await open_slots(c)
        assert (await c.post("/api/v1/appointments", json=booking_body(slots[0]["id"]))).is_success
        answers = [
            await c.post(
                "/api/v1/appointments",
                json=booking_body(slot_id, b=person() | {"phone": phone}),
            )
            for slot_id in (slots[0]["id"], slots[0]["id"], slots[1]["id"], slots[2]["id"])
        ]
    outcomes = [(r.status_code, slug(r) if r.status_code >= 400 else "") for r in answers]
    assert outcomes == [(409, "slot-full"), (409, "slot-full"), (201, ""), (429, "rate-limited")]
    assert await Appointment.count() == 2


async def test_refused_for_full_counts_per_address(db: None) -> None:
    """The per-address limit is the middleware's, before the handler: refusals count."""
    await fresh_window(60, 5)
    await make_office(slot_cap=1)
    app = app_with(rate_limit_sms_per_minute=3)
    async with client_at(app, "198.51.100.80") as other:
        slots = await open_slots(other)
        full = slots[0]["id"]
        assert (await other.post("/api/v1/appointments", json=booking_body(full))).is_success
    async with client_at(app, "198.51.100.81") as c:
        answers = [await c.post("/api/v1/appointments", json=booking_body(full)) for _ in range(4)]
    assert [slug(r) for r in answers] == ["slot-full"] * 3 + ["rate-limited"]
    assert answers[-1].status_code == 429
