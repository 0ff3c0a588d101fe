"""One active marriage appointment per ID number, across parties and offices,
also when the bookings race each other."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from scheduler.settings import get_settings
from tests.helpers import booking_body, gather, make_office, open_slots, person
from tests.test_caps_concurrency import assert_counters_consistent, open_days, outcomes, slug


async def _stored() -> dict[str, int]:
    from scheduler.db.tables import Appointment, IdClaim, Party, Slot
    from tests.support.day_counters import check_days

    await check_days()

    return {
        "appointments": await Appointment.count(),
        "parties": await Party.count(),
        "claims": await IdClaim.count(),
        "slot_booked": sum(r["booked"] for r in await Slot.select(Slot.booked)),
    }


async def _post(client: httpx.AsyncClient, slot_id: int, **kw: Any) -> httpx.Response:
    return await client.post("/api/v1/appointments", json=booking_body(slot_id, **kw))


async def _book(client: httpx.AsyncClient, slot_id: int, **kw: Any) -> dict[str, Any]:
    resp = await _post(client, slot_id, **kw)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _already_booked(resp: httpx.Response) -> bool:
    return resp.status_code == 409 and slug(resp) == "already-booked"


async def test_same_id_cannot_hold_two_marriage_appointments(client: httpx.AsyncClient) -> None:
    await make_office(code="GZ-TH")
    await make_office(code="SZ-FT")
    here = await open_slots(client, office="GZ-TH")
    there = await open_slots(client, office="SZ-FT")
    x, y = person(), person()
    await _book(client, here[0]["id"], a=x, b=y)
    before = await _stored()

    # Again as party a, as party b, at another office, and both of them together.
    assert _already_booked(await _post(client, here[1]["id"], a=x))
    assert _already_booked(await _post(client, here[2]["id"], b=x))
    assert _already_booked(await _post(client, there[0]["id"], a=person(), b=y))
    assert _already_booked(await _post(client, there[1]["id"], a=y, b=x))
    # The same number typed differently (lower-case x, spaces) is the same person.
    spaced = x | {"id_number": " ".join([x["id_number"][:6], x["id_number"][6:].lower()])}
    assert _already_booked(await _post(client, there[2]["id"], a=spaced))

    assert await _stored() == before
    # The refused partners were not claimed: they can book together.
    await _book(client, there[3]["id"])
    await assert_counters_consistent()


async def test_racing_bookings_with_one_shared_person(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=5)
    slots = await open_slots(client)
    x = person()
    bodies = [
        booking_body(slots[i]["id"], a=x) if i % 2 else booking_body(slots[i]["id"], b=x)
        for i in range(20)
    ]
    results = outcomes(await gather(*(client.post("/api/v1/appointments", json=b) for b in bodies)))
    assert results == Counter({(201, ""): 1, (409, "already-booked"): 19})
    stored = await _stored()
    assert stored["appointments"] == 1
    assert stored["claims"] == 4  # typed and any-type, per person (issue 13.7)
    assert stored["slot_booked"] == 1  # and the day's count, checked by _stored
    await assert_counters_consistent()


async def test_racing_couples_with_roles_swapped(client: httpx.AsyncClient) -> None:
    """Each couple books twice at once, once as (x, y) and once as (y, x): one
    booking per couple, and no request fails with a server error."""
    await make_office(slot_cap=50)
    # Different days: no shared counter row serialises the two bookings of a couple,
    # so only the ID claims decide between them.
    days = (await open_days(client))[:6]
    couples = [(person(), person()) for _ in range(15)]
    calls = []
    for i, (x, y) in enumerate(couples):
        calls.append(_post(client, days[i % 6]["slots"][0]["id"], a=x, b=y))
        calls.append(_post(client, days[(i + 1) % 6]["slots"][0]["id"], a=y, b=x))
    results = outcomes(await gather(*calls))
    assert results == Counter({(201, ""): 15, (409, "already-booked"): 15})
    stored = await _stored()
    assert stored["appointments"] == 15 and stored["claims"] == 60  # two per person
    await assert_counters_consistent()


async def test_cancel_and_expiry_release_the_id(client: httpx.AsyncClient) -> None:
    from datetime import UTC, datetime, timedelta

    from scheduler.usecases.booking.lifecycle import expire_holds

    await make_office()
    slots = await open_slots(client)
    x = person()
    first = await _book(client, slots[0]["id"], a=x)
    assert _already_booked(await _post(client, slots[1]["id"], a=x))
    resp = await client.post(
        f"/api/v1/appointments/{first['reference']}/cancel",
        headers={"X-Manage-Token": first["manage_token"]},
    )
    assert resp.status_code == 200, resp.text
    await _book(client, slots[1]["id"], b=x)
    assert _already_booked(await _post(client, slots[2]["id"], a=x))
    assert (
        await expire_holds(datetime.now(UTC) + timedelta(minutes=16), settings=get_settings()) == 1
    )
    await _book(client, slots[2]["id"], a=x)
    await assert_counters_consistent()


async def test_divorce_does_not_claim_the_id(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import IdClaim

    await make_office(services=("marriage", "divorce"))
    divorce = await open_slots(client, service="divorce")
    marriage = await open_slots(client)
    x, y = person(), person()
    for slot in divorce[:2]:  # not one-per-ID: twice is allowed
        await _book(client, slot["id"], a=x, b=y, service="divorce")
    assert await IdClaim.count() == 0
    await _book(client, marriage[0]["id"], a=x, b=y)
    assert await IdClaim.count() == 4  # two per person (issue 13.7)
    # A marriage claim does not stop a divorce booking either.
    await _book(client, divorce[2]["id"], a=x, b=y, service="divorce")
    assert _already_booked(await _post(client, marriage[1]["id"], a=x))
    await assert_counters_consistent()
