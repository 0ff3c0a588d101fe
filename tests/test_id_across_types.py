"""One active marriage per person whatever the ID type (issue 13.7), through the API.

Before: the same 18-digit resident ID number booked again as ``passport`` got 201,
and an HK permit number typed again as a passport too (the claim was keyed on type
and number). Now a booking also claims the normalised number alone, and a passport
number that is a valid resident ID number is refused.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from tests.helpers import booking_body, gather, make_office, open_slots, person
from tests.test_lottery_api import application, setup  # noqa: F401 - the lottery fixture
from tests.waitlist_helpers import join_body


async def designate(code: str = "GZ-TH") -> None:
    """Permit and passport holders register at designated offices only (issue 12)."""
    from scheduler.db.tables import Office

    await Office.update({Office.designated: True}).where(Office.code == code)


def slug(resp: httpx.Response) -> str:
    return str(resp.json().get("type", "")).rsplit("/", 1)[-1]


async def test_a_resident_id_booked_again_as_a_passport_is_already_booked(
    client: httpx.AsyncClient,
) -> None:
    await make_office()
    slots = await open_slots(client)
    x = person()
    first = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"], a=x))
    assert first.status_code == 201, first.text
    as_passport = x | {"id_type": "passport", "phone": person()["phone"]}
    for role in ("a", "b"):
        again = await client.post(
            "/api/v1/appointments", json=booking_body(slots[1]["id"], **{role: as_passport})
        )
        assert again.status_code == 409 and slug(again) == "already-booked", again.text


async def test_a_permit_number_booked_again_as_a_passport_is_already_booked(
    client: httpx.AsyncClient,
) -> None:
    await make_office(designated=True)
    slots = await open_slots(client)
    hk = person() | {"id_type": "hk_macau_permit", "id_number": "H12345678"}
    first = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"], a=hk))
    assert first.status_code == 201, first.text
    as_passport = hk | {"id_type": "passport", "phone": person()["phone"]}
    again = await client.post(
        "/api/v1/appointments", json=booking_body(slots[1]["id"], b=as_passport)
    )
    assert again.status_code == 409 and slug(again) == "already-booked", again.text
    # Racing twins under two types: one booking.
    tw = person() | {"id_type": "taiwan_permit", "id_number": "87654321"}
    bodies = [
        booking_body(slots[2 + i]["id"], a=tw | {"id_type": t, "phone": person()["phone"]})
        for i, t in enumerate(["taiwan_permit", "passport"] * 5)
    ]
    answers = await gather(*(client.post("/api/v1/appointments", json=b) for b in bodies))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 9


async def test_a_passport_number_that_is_a_resident_id_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await make_office()
    slot = (await open_slots(client))[0]
    x = person()
    body = booking_body(slot["id"], b=x | {"id_type": "passport"})
    resp = await client.post("/api/v1/appointments", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "party_b.id_number"
    en = await client.post("/api/v1/appointments", json=body, headers={"Accept-Language": "en"})
    assert "resident ID card number" in en.json()["detail"]
    # The same two people as one person under two types: refused as the same person.
    same = booking_body(slot["id"], a=x, b=x | {"id_type": "passport", "phone": person()["phone"]})
    resp = await client.post("/api/v1/appointments", json=same)
    assert resp.status_code == 422 and resp.json()["field"] == "party_b.id_number"
    # The waiting list refuses it too.
    day = (date.today() + timedelta(days=3)).isoformat()
    joined = join_body(day)
    joined["party_a"] = x | {"id_type": "passport"}
    resp = await client.post("/api/v1/waitlist", json=joined)
    assert resp.status_code == 422 and resp.json()["field"] == "party_a.id_number"
    from scheduler.db.tables import Appointment

    assert await Appointment.count() == 0


async def test_one_waitlist_entry_per_person_whatever_the_type(client: httpx.AsyncClient) -> None:
    await make_office(designated=True)
    day = (date.today() + timedelta(days=3)).isoformat()
    hk = person() | {"id_type": "hk_macau_permit", "id_number": "M1234567890"}
    first = join_body(day)
    first["party_a"] = hk
    assert (await client.post("/api/v1/waitlist", json=first)).status_code == 201
    again = join_body(day)
    again["party_b"] = hk | {"id_type": "passport", "phone": person()["phone"]}
    resp = await client.post("/api/v1/waitlist", json=again)
    assert resp.status_code == 409 and slug(resp) == "already-waiting", resp.text


async def test_one_lottery_application_per_person_whatever_the_type(
    client: httpx.AsyncClient,
    setup: dict[str, Any],  # noqa: F811 - the lottery fixture
) -> None:
    await designate()
    url = f"/api/v1/lotteries/{setup['id']}/applications"
    tw = person() | {"id_type": "taiwan_permit", "id_number": "12345678"}
    assert (await client.post(url, json=application(a=tw))).status_code == 201
    as_passport = tw | {"id_type": "passport", "phone": person()["phone"]}
    resp = await client.post(url, json=application(b=as_passport))
    assert resp.status_code == 409 and slug(resp) == "already-applied", resp.text


async def test_a_person_booked_under_another_type_cannot_win_the_lottery(
    client: httpx.AsyncClient,
    setup: dict[str, Any],  # noqa: F811 - the lottery fixture
) -> None:
    from datetime import UTC, datetime

    from scheduler.db.lottery_tables import LotteryApplication
    from scheduler.db.tables import Slot
    from scheduler.settings import get_settings
    from scheduler.usecases.lottery import draw as lottery
    from tests.test_lottery_api import apply, close_window

    await designate()
    lid = setup["id"]
    tw = person() | {"id_type": "taiwan_permit", "id_number": "87654321"}
    other_day = await (
        Slot.select(Slot.id)
        .where(
            (Slot.office == setup["office_id"])
            & (Slot.day != setup["day"])
            # A slot not yet past, whatever the hour the suite runs at.
            & (Slot.start_at > datetime.now(UTC) + timedelta(days=1))
        )
        .order_by(Slot.start_at)
        .first()
    )
    assert other_day is not None
    as_passport = tw | {"id_type": "passport", "phone": person()["phone"]}
    resp = await client.post(
        "/api/v1/appointments", json=booking_body(other_day["id"], a=as_passport)
    )
    assert resp.status_code == 201, resp.text
    blocked = (await apply(client, lid, a=tw))["reference"]
    free = (await apply(client, lid))["reference"]
    await close_window(lid)
    assert (await lottery.tick(datetime.now(UTC), get_settings()))["won"] == 1
    statuses = {r["reference"]: r["status"] for r in await LotteryApplication.select()}
    assert statuses == {blocked: "ineligible", free: "won"}


async def test_a_waiting_couple_booked_under_another_type_is_passed_over(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.db.waitlist_tables import WaitlistEntry
    from tests.waitlist_helpers import fill, join_and_verify, one_slot_office, target_slot

    await one_slot_office()
    await designate()
    slot = await target_slot(client)
    held = (await fill(client, slot["id"], 1))[0]
    hk = person() | {"id_type": "hk_macau_permit", "id_number": "H87654321"}
    body = join_body(slot["date"])
    body["party_a"] = hk
    joined = await join_and_verify(client, body)
    elsewhere = next(s for s in await open_slots(client) if s["id"] != slot["id"])
    as_passport = hk | {"id_type": "passport", "phone": person()["phone"]}
    booked = await client.post(
        "/api/v1/appointments", json=booking_body(elsewhere["id"], b=as_passport)
    )
    assert booked.status_code == 201, booked.text
    gone = await client.post(
        f"/api/v1/appointments/{held['reference']}/cancel",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert gone.status_code == 200, gone.text
    entry = await WaitlistEntry.select().where(WaitlistEntry.reference == joined["reference"])
    assert entry[0]["status"] == "waiting"  # passed over: no second appointment
