"""Booking through the public API: hold, confirm, view, cancel, move, .ics."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import booking_body, make_office, open_slots, person, sms_codes


async def _book(client: httpx.AsyncClient, slot_id: int, **kw: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id, **kw))
    assert resp.status_code == 201, resp.text
    return resp.json()


async def _confirm_both(client: httpx.AsyncClient, reference: str) -> dict[str, Any]:
    codes = await sms_codes(reference)
    assert set(codes) == {"a", "b"}
    for role in ("a", "b"):
        resp = await client.post(
            f"/api/v1/appointments/{reference}/confirm", json={"party": role, "code": codes[role]}
        )
        assert resp.status_code == 200, resp.text
    return resp.json()


async def test_hold_then_both_confirm(client: httpx.AsyncClient) -> None:
    await make_office()
    slot = (await open_slots(client))[0]
    held = await _book(client, slot["id"])
    assert held["status"] == "pending_confirmation"
    assert held["hold_expires_at"] is not None
    assert len(held["manage_token"]) >= 32
    assert held["reference"].startswith("GZTH-")
    assert "*" in held["parties"][0]["id_number_masked"]
    assert "****" in held["parties"][0]["phone_masked"]
    final = await _confirm_both(client, held["reference"])
    assert final["status"] == "confirmed"
    assert all(p["confirmed"] for p in final["parties"])
    remaining = {s["id"]: s["remaining"] for s in await open_slots(client)}
    assert remaining[slot["id"]] == slot["remaining"] - 1


async def test_one_party_confirmed_is_still_pending(client: httpx.AsyncClient) -> None:
    await make_office()
    held = await _book(client, (await open_slots(client))[0]["id"])
    codes = await sms_codes(held["reference"])
    resp = await client.post(
        f"/api/v1/appointments/{held['reference']}/confirm", json={"party": "a", "code": codes["a"]}
    )
    assert resp.json()["status"] == "pending_confirmation"


async def test_wrong_code_is_422_and_counts(client: httpx.AsyncClient) -> None:
    await make_office()
    held = await _book(client, (await open_slots(client))[0]["id"])
    codes = await sms_codes(held["reference"])
    wrong = "000000" if codes["a"] != "000000" else "111111"
    for attempt in range(5):
        resp = await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm", json={"party": "a", "code": wrong}
        )
        assert resp.headers["content-type"].startswith("application/problem+json")
        if attempt < 4:
            assert resp.status_code == 422
            assert resp.json()["type"].endswith("/wrong-code")
        else:  # the last attempt locks the codes and releases the hold (issue 14)
            assert resp.status_code == 429
            assert resp.json()["type"].endswith("/too-many-attempts")
    # Attempts are spent: even the right code is now refused.
    resp = await client.post(
        f"/api/v1/appointments/{held['reference']}/confirm", json={"party": "a", "code": codes["a"]}
    )
    assert resp.status_code == 429
    assert resp.json()["type"].endswith("/too-many-attempts")


async def test_view_needs_the_token_and_hides_existence(client: httpx.AsyncClient) -> None:
    await make_office()
    held = await _book(client, (await open_slots(client))[0]["id"])
    ref = held["reference"]
    ok = await client.get(
        f"/api/v1/appointments/{ref}", headers={"X-Manage-Token": held["manage_token"]}
    )
    assert ok.status_code == 200 and ok.json()["reference"] == ref
    wrong = await client.get(f"/api/v1/appointments/{ref}", headers={"X-Manage-Token": "x" * 32})
    missing = await client.get(
        "/api/v1/appointments/GZTH-0000-0000", headers={"X-Manage-Token": "x" * 32}
    )
    assert wrong.status_code == missing.status_code == 404
    assert wrong.json()["type"] == missing.json()["type"]


async def test_cancel_frees_the_seat_and_ids(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=1)
    slot = (await open_slots(client))[0]
    a, b = person(), person()
    held = await _book(client, slot["id"], a=a, b=b)
    resp = await client.post(
        f"/api/v1/appointments/{held['reference']}/cancel",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    again = await client.post(
        f"/api/v1/appointments/{held['reference']}/cancel",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert again.status_code == 409
    # Same seat, same people: bookable again.
    await _book(client, slot["id"], a=a, b=b)


async def test_move_takes_new_seat_and_frees_old(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=1)
    first, second = (await open_slots(client))[:2]
    held = await _book(client, first["id"])
    resp = await client.post(
        f"/api/v1/appointments/{held['reference']}/move",
        json={"slot_id": second["id"]},
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["slot"]["id"] == second["id"]
    remaining = {s["id"]: s["remaining"] for s in await open_slots(client)}
    assert remaining[first["id"]] == 1 and remaining[second["id"]] == 0


async def test_move_to_full_slot_keeps_the_old_one(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=1)
    first, second = (await open_slots(client))[:2]
    mine = await _book(client, first["id"])
    await _book(client, second["id"])
    resp = await client.post(
        f"/api/v1/appointments/{mine['reference']}/move",
        json={"slot_id": second["id"]},
        headers={"X-Manage-Token": mine["manage_token"]},
    )
    assert resp.status_code == 409 and resp.json()["type"].endswith("/slot-full")
    view = await client.get(
        f"/api/v1/appointments/{mine['reference']}",
        headers={"X-Manage-Token": mine["manage_token"]},
    )
    assert view.json()["slot"]["id"] == first["id"]


async def test_ics_download(client: httpx.AsyncClient) -> None:
    await make_office()
    held = await _book(client, (await open_slots(client))[0]["id"])
    resp = await client.get(
        f"/api/v1/appointments/{held['reference']}.ics", params={"token": held["manage_token"]}
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in resp.text and held["reference"] in resp.text
    denied = await client.get(
        f"/api/v1/appointments/{held['reference']}.ics", params={"token": "nope"}
    )
    assert denied.status_code == 404


async def test_idempotency_key_returns_the_same_booking(client: httpx.AsyncClient) -> None:
    await make_office()
    body = booking_body((await open_slots(client))[0]["id"])
    headers = {"Idempotency-Key": "retry-0123456789"}
    first = await client.post("/api/v1/appointments", json=body, headers=headers)
    second = await client.post("/api/v1/appointments", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = await client.post(
        "/api/v1/appointments", json=booking_body(body["slot_id"]), headers=headers
    )
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
