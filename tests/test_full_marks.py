"""A slot just found full is refused in memory for a second (scheduler/db/full_marks.py):
through the API, a seat given back by this process is offered again at once, a seat
freed elsewhere is seen within ``FULL_FOR``, and a raised cap at once."""

from __future__ import annotations

import asyncio

import httpx

from scheduler.db import full_marks
from scheduler.db.tables import Appointment, Slot
from tests.helpers import booking_body, make_office, open_slots, staff_token
from tests.test_ratelimits import slug


async def _full_slot(client: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    """A one-seat slot, taken, and one couple refused for it (which marks it full)."""
    await make_office(slot_cap=1)
    slot_id = (await open_slots(client))[0]["id"]
    taken = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert taken.status_code == 201, taken.text
    refused = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert refused.status_code == 409 and slug(refused) == "slot-full"
    return slot_id, taken.json()


async def test_a_seat_given_back_here_is_offered_at_once(
    client: httpx.AsyncClient, db: None
) -> None:
    slot_id, held = await _full_slot(client)
    cancelled = await client.post(
        f"/api/v1/appointments/{held['reference']}/cancel",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert cancelled.status_code == 200, cancelled.text
    again = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert again.status_code == 201, again.text


async def test_a_seat_freed_by_another_process_is_seen_within_the_mark(
    client: httpx.AsyncClient, db: None
) -> None:
    slot_id, held = await _full_slot(client)
    # Another process (the worker's expiry job, a second web process) gives the seat
    # back: this process's mark does not hear of it.
    await Appointment.update({Appointment.status: "expired"}).where(
        Appointment.reference == held["reference"]
    )
    await Slot.raw("UPDATE slot SET booked = 0, held = 0 WHERE id = {}", slot_id)
    assert [s["remaining"] for s in await open_slots(client) if s["id"] == slot_id] == [1]
    stale = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert stale.status_code == 409 and slug(stale) == "slot-full"  # refused in memory
    await asyncio.sleep(full_marks.FULL_FOR + 0.1)
    fresh = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert fresh.status_code == 201, fresh.text


async def test_a_raised_cap_is_offered_at_once(client: httpx.AsyncClient, db: None) -> None:
    slot_id, _ = await _full_slot(client)
    root = await staff_token(client, "root", role="superadmin", offices=())
    raised = await client.put(
        "/api/v1/admin/offices/GZ-TH/services/marriage", json={"slot_cap": 2}, headers=root
    )
    assert raised.status_code == 200, raised.text
    again = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert again.status_code == 201, again.text
