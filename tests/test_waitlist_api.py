"""The waiting list through the public API: join, verify, view, leave, offers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.settings import get_settings
from tests.helpers import booking_body, person
from tests.waitlist_helpers import (
    entry_id,
    fill,
    join_and_verify,
    join_body,
    offer_codes,
    one_slot_office,
    target_slot,
    texted,
    view,
)


def slug(resp: httpx.Response) -> str:
    return str(resp.json().get("type", "")).rsplit("/", 1)[-1]


async def stored() -> tuple[int, int, int]:
    from scheduler.db.tables import Party
    from scheduler.db.waitlist_tables import WaitlistClaim, WaitlistEntry

    return (
        await WaitlistEntry.count(),
        await Party.count().where(Party.entry.is_not_null()),
        await WaitlistClaim.count(),
    )


async def test_join_verify_view_leave(client: httpx.AsyncClient) -> None:
    await one_slot_office()
    slot = await target_slot(client)
    resp = await client.post("/api/v1/waitlist", json=join_body(slot["date"]))
    assert resp.status_code == 201, resp.text
    joined = resp.json()
    assert joined["status"] == "pending" and joined["manage_token"]
    assert joined["parties"][0]["id_number_masked"].count("*") >= 8
    codes = await texted("waitlist_code", f"waitlist:{await entry_id(joined['reference'])}:")
    assert set(codes) == {"a", "b"}
    wrong = await client.post(
        f"/api/v1/waitlist/{joined['reference']}/confirm", json={"party": "a", "code": "000000"}
    )
    assert wrong.status_code == 422 and slug(wrong) == "wrong-code"
    for role in ("a", "b"):
        resp = await client.post(
            f"/api/v1/waitlist/{joined['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
        assert resp.status_code == 200, resp.text
    # The day has a free seat (nobody booked it): verifying offers it at once.
    seen = await view(client, joined)
    assert seen["status"] == "offered" and seen["offer"]["slot"]["id"] == slot["id"]

    other = await client.get(
        f"/api/v1/waitlist/{joined['reference']}", headers={"X-Manage-Token": "nope"}
    )
    assert other.status_code == 404
    left = await client.post(
        f"/api/v1/waitlist/{joined['reference']}/leave",
        headers={"X-Manage-Token": joined["manage_token"]},
    )
    assert left.status_code == 200 and left.json()["status"] == "left", left.text
    # Leaving gave the offered seat back.
    after = (await target_slot(client))["remaining"]
    assert after == 1
    again = await client.post(
        f"/api/v1/waitlist/{joined['reference']}/leave",
        headers={"X-Manage-Token": joined["manage_token"]},
    )
    assert again.status_code == 409 and slug(again) == "not-pending"


async def test_one_active_entry_per_id_and_date(client: httpx.AsyncClient) -> None:
    await one_slot_office()
    slot = await target_slot(client)
    await fill(client, slot["id"], 1)
    a = person()
    first = await join_and_verify(client, join_body(slot["date"], party_a=a))
    before = await stored()
    dup = await client.post("/api/v1/waitlist", json=join_body(slot["date"], party_b=a))
    assert dup.status_code == 409 and slug(dup) == "already-waiting", dup.text
    assert await stored() == before
    # After leaving, the same person may join again.
    await client.post(
        f"/api/v1/waitlist/{first['reference']}/leave",
        headers={"X-Manage-Token": first["manage_token"]},
    )
    again = await client.post("/api/v1/waitlist", json=join_body(slot["date"], party_b=a))
    assert again.status_code == 201, again.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_from": "10:00"}, "time_to"),
        ({"time_from": "11:00", "time_to": "10:00"}, "time_from"),
        ({"time_from": "9h", "time_to": "10:00"}, "time_from"),
        ({"offices": ["GZ-TH", "X1", "X2", "X3"]}, "offices"),
        ({"offices": ["GZ-TH", "GZ-TH"]}, "offices"),
        ({"offices": ["NOPE"]}, "offices"),
        ({"offices": []}, "offices"),
        ({"date": "2001-01-01"}, "date"),
        ({"date": "not-a-date"}, "date"),
        ({"service": "wedding"}, "service"),
        ({"surprise": 1}, ""),
        ({"party_b": {"name": "x", "id_type": "mainland_id", "id_number": "1", "phone": "1"}}, ""),
    ],
)
async def test_bad_input_is_422_and_stores_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    await one_slot_office()
    slot = await target_slot(client)
    resp = await client.post("/api/v1/waitlist", json=join_body(slot["date"]) | change)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert slug(resp) == "invalid-input"
    assert field in (resp.json().get("field") or "")
    assert await stored() == (0, 0, 0)


async def test_date_beyond_booking_window_is_refused(client: httpx.AsyncClient) -> None:
    await one_slot_office()
    far = (date.today() + timedelta(days=90)).isoformat()
    resp = await client.post("/api/v1/waitlist", json=join_body(far))
    assert resp.status_code == 422 and resp.json()["field"] == "date"
    assert await stored() == (0, 0, 0)


async def test_cancellation_offers_the_seat_which_the_couple_confirms(
    client: httpx.AsyncClient,
) -> None:
    await one_slot_office()
    slot = await target_slot(client)
    [booked] = await fill(client, slot["id"], 1)
    joined = await join_and_verify(client, join_body(slot["date"]))
    assert (await view(client, joined))["status"] == "waiting"
    assert (await view(client, joined))["ahead"] == 0
    resp = await client.post(
        f"/api/v1/appointments/{booked['reference']}/cancel",
        headers={"X-Manage-Token": booked["manage_token"]},
    )
    assert resp.status_code == 200, resp.text
    offer = (await view(client, joined))["offer"]
    assert offer is not None and offer["status"] == "pending_confirmation"
    codes = await offer_codes(await entry_id(joined["reference"]))
    for role in ("a", "b"):
        resp = await client.post(
            f"/api/v1/appointments/{offer['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
        assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "confirmed"
    seen = await view(client, joined)
    assert seen["status"] == "booked" and seen["offer"]["status"] == "confirmed"
    # The list's token manages the appointment too.
    appt = await client.get(
        f"/api/v1/appointments/{offer['reference']}",
        headers={"X-Manage-Token": joined["manage_token"]},
    )
    assert appt.status_code == 200


async def test_lapsed_offer_passes_on_and_leaves_the_list(client: httpx.AsyncClient) -> None:
    from scheduler.usecases.booking.lifecycle import expire_holds

    await one_slot_office()
    slot = await target_slot(client)
    [booked] = await fill(client, slot["id"], 1)
    first = await join_and_verify(client, join_body(slot["date"]))
    second = await join_and_verify(client, join_body(slot["date"]))
    assert (await view(client, second))["ahead"] == 1
    await client.post(
        f"/api/v1/appointments/{booked['reference']}/cancel",
        headers={"X-Manage-Token": booked["manage_token"]},
    )
    assert (await view(client, first))["status"] == "offered"
    assert (await view(client, second))["status"] == "waiting"
    later = datetime.now(UTC) + timedelta(minutes=61)
    # Only the offer still holds a seat (the booking was cancelled).
    assert await expire_holds(later, settings=get_settings()) == 1
    assert (await view(client, first))["status"] == "lapsed"
    assert (await view(client, second))["status"] == "offered"
    assert (await target_slot(client))["remaining"] == 0


async def test_time_range_and_other_offices(client: httpx.AsyncClient) -> None:
    """A couple that wants another hour is passed over; "any of these offices"
    gets a seat freed at its second choice."""
    await one_slot_office()
    await one_slot_office(code="GZ-YX")
    slot = await target_slot(client)
    [booked] = await fill(client, slot["id"], 1)
    picky = await join_and_verify(
        client, join_body(slot["date"], time_from="14:00", time_to="16:00")
    )
    other = await target_slot(client, "GZ-YX")
    assert other["date"] == slot["date"]
    await fill(client, other["id"], 1)
    flexible = await join_and_verify(client, join_body(slot["date"], offices=["GZ-YX", "GZ-TH"]))
    await client.post(
        f"/api/v1/appointments/{booked['reference']}/cancel",
        headers={"X-Manage-Token": booked["manage_token"]},
    )
    assert (await view(client, picky))["status"] == "waiting"
    seen = await view(client, flexible)
    assert seen["status"] == "offered" and seen["offer"]["office"] == "GZ-TH"


async def test_job_offers_seats_the_hooks_missed(client: httpx.AsyncClient) -> None:
    """A capacity raise frees seats without any hook: the periodic job offers them."""
    from scheduler.db.tables import Slot
    from scheduler.usecases.waitlist.offers import run

    await one_slot_office()
    slot = await target_slot(client)
    await fill(client, slot["id"], 1)
    entries = [await join_and_verify(client, join_body(slot["date"])) for _ in range(3)]
    await Slot.update({Slot.capacity: 3}).where(Slot.id == slot["id"])
    assert await run(datetime.now(UTC), get_settings()) == 2
    assert [(await view(client, e))["status"] for e in entries] == ["offered", "offered", "waiting"]
    assert await run(datetime.now(UTC), get_settings()) == 0


async def test_booking_body_still_books(client: httpx.AsyncClient) -> None:
    """The hooks leave ordinary booking alone when nobody waits."""
    await one_slot_office(cap=2)
    slot = await target_slot(client)
    resp = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    assert resp.status_code == 201
    cancel = await client.post(
        f"/api/v1/appointments/{resp.json()['reference']}/cancel",
        headers={"X-Manage-Token": resp.json()["manage_token"]},
    )
    assert cancel.status_code == 200
    assert (await target_slot(client))["remaining"] == 2


async def test_retention_erases_entries_past_their_date(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import Party
    from scheduler.db.waitlist_tables import WaitlistEntry
    from scheduler.settings import get_settings
    from scheduler.usecases.privacy.retention import SCHEDULED_ERASERS

    await one_slot_office()
    slot = await target_slot(client)
    await fill(client, slot["id"], 1)
    await join_and_verify(client, join_body(slot["date"]))
    import scheduler.usecases.waitlist.retention  # noqa: F401 - registers the eraser, as the job does

    erase = SCHEDULED_ERASERS["waitlist"]
    settings = get_settings()
    assert await erase(datetime.now(UTC), settings) == 0  # not yet past retention
    day = date.fromisoformat(slot["date"])
    later = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        days=settings.retention_days + 2
    )
    assert await erase(later, settings) == 2
    assert await erase(later, settings) == 0  # idempotent
    rows = await Party.select(Party.name, Party.phone, Party.id_sealed, Party.id_hash).where(
        Party.entry.is_not_null()
    )
    assert len(rows) == 2
    assert all(set(r.values()) == {""} for r in rows)
    assert await WaitlistEntry.count() == 1  # the entry itself stays for statistics
