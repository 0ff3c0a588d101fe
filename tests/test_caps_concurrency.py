"""The three hard caps hold under concurrent requests, and the stored counters
always equal the appointments that actually hold a seat.

Every request goes through the public HTTP API on the test's own event loop, so
``asyncio.gather`` really overlaps them (and, on PostgreSQL, their transactions).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.helpers import booking_body, gather, make_office, open_slots
from tests.support.day_counters import check_days

ATTEMPTS = 200
ACTIVE = ("pending_confirmation", "confirmed")


async def open_days(client: httpx.AsyncClient, office: str = "GZ-TH") -> list[dict[str, Any]]:
    """Open days (with their slots) from the day after tomorrow, soonest first."""
    start = date.today() + timedelta(days=2)
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={
            "service": "marriage",
            "from": start.isoformat(),
            "to": (start + timedelta(days=20)).isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    return [d for d in resp.json()["days"] if d["status"] == "open"]


def slug(resp: httpx.Response) -> str:
    return str(resp.json().get("type", "")).rsplit("/", 1)[-1]


def outcomes(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    """(status, problem slug) of each response; 2xx responses have slug ''."""
    assert not [r for r in responses if r.status_code >= 500], [
        r.text for r in responses if r.status_code >= 500
    ]
    return Counter((r.status_code, slug(r) if r.status_code >= 400 else "") for r in responses)


async def assert_counters_consistent() -> dict[str, int]:
    """Every stored counter equals what the active appointments (pending or
    confirmed: nobody is checked in in these tests) really take, and stays within
    0..capacity. Returns the number of active appointments and their people."""
    from scheduler.db.tables import Appointment, OfficeDay, OnsiteWindow, Slot
    from scheduler.domain.calendar import onsite_window_start

    active = await (
        Appointment.select(
            Appointment.people,
            Appointment.slot.all_columns(),
            Appointment.office.timezone,
        )
        .where(Appointment.status.is_in(list(ACTIVE)))
        .output(nested=True)
    )
    per_slot: Counter[int] = Counter()
    per_day: Counter[tuple[int, date]] = Counter()
    per_window: Counter[tuple[int, datetime]] = Counter()
    for row in active:
        slot = row["slot"]
        tz = ZoneInfo(row["office"]["timezone"])
        per_slot[slot["id"]] += 1
        per_day[(slot["office"], slot["day"])] += 1
        per_window[(slot["office"], onsite_window_start(slot["start_at"], tz))] += row["people"]

    for s in await Slot.select():
        assert 0 <= s["booked"] <= s["capacity"], s
        assert s["booked"] == per_slot.pop(s["id"], 0), ("slot", s)
    assert not per_slot, f"appointments on slots that do not exist: {per_slot}"
    # The day's true count within its cap; its stored one where its row keeps it.
    await check_days(dict(per_day))
    days = {(d["office"], d["day"]) for d in await OfficeDay.select()}
    assert not set(per_day) - days, f"appointments on days without a counter: {per_day}"
    for w in await OnsiteWindow.select():
        assert 0 <= w["people"] <= w["capacity"], w
        assert w["people"] == per_window.pop((w["office"], w["window_start"]), 0), ("onsite", w)
    assert not per_window, f"appointments in windows without a counter: {per_window}"
    return {"active": len(active), "people": sum(r["people"] for r in active)}


async def _book_all(client: httpx.AsyncClient, slot_ids: list[int]) -> list[httpx.Response]:
    return await gather(
        *(client.post("/api/v1/appointments", json=booking_body(s)) for s in slot_ids)
    )


async def test_slot_cap_holds_under_200_concurrent_bookings(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import Appointment, Slot

    await make_office(slot_cap=10)
    slot = (await open_slots(client))[0]
    assert slot["remaining"] == 10

    results = outcomes(await _book_all(client, [slot["id"]] * ATTEMPTS))

    assert results == Counter({(201, ""): 10, (409, "slot-full"): ATTEMPTS - 10})
    row = await Slot.select().where(Slot.id == slot["id"]).first()
    held = await Appointment.count().where(
        (Appointment.slot == slot["id"]) & Appointment.status.is_in(list(ACTIVE))
    )
    assert row["booked"] == held == 10
    assert (await assert_counters_consistent())["active"] == 10
    after = {s["id"]: s["remaining"] for s in await open_slots(client)}
    assert after.get(slot["id"], 0) == 0


async def test_day_cap_holds_across_the_days_slots(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import OfficeDay

    office_id = await make_office(slot_cap=1000, day_cap=10)
    day = (await open_days(client))[0]
    slot_ids = [s["id"] for s in day["slots"]]
    assert len(slot_ids) > 1

    attempts = [slot_ids[i % len(slot_ids)] for i in range(ATTEMPTS)]
    results = outcomes(await _book_all(client, attempts))

    assert results == Counter({(201, ""): 10, (409, "day-full"): ATTEMPTS - 10})
    row = (
        await OfficeDay.select()
        .where((OfficeDay.office == office_id) & (OfficeDay.day == date.fromisoformat(day["date"])))
        .first()
    )
    assert row["booked"] == 10
    assert (await assert_counters_consistent())["active"] == 10
    again = await open_days(client)
    assert day["date"] not in {d["date"] for d in again}  # the day now shows as full


async def test_onsite_cap_holds_within_one_hour_window(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import OnsiteWindow

    # 20 people in the hall per hour = 10 couples; 30-minute slots: two per window.
    office_id = await make_office(slot_cap=1000, onsite_cap=20, slot_minutes=30)
    slots = (await open_days(client))[0]["slots"]
    first_hour = [s["id"] for s in slots if s["start"] in ("09:00", "09:30")]
    assert len(first_hour) == 2

    attempts = [first_hour[i % 2] for i in range(ATTEMPTS)]
    results = outcomes(await _book_all(client, attempts))

    assert results == Counter({(201, ""): 10, (409, "onsite-full"): ATTEMPTS - 10})
    windows = await OnsiteWindow.select().where(
        (OnsiteWindow.office == office_id) & (OnsiteWindow.people > 0)
    )
    assert [w["people"] for w in windows] == [20]
    totals = await assert_counters_consistent()
    assert totals == {"active": 10, "people": 20}
    # The next hour is untouched.
    later = next(s for s in (await open_days(client))[0]["slots"] if s["start"] == "10:00")
    assert later["remaining"] == 10


# A day of 14 thirty-minute slots (09-12, 13-17) of 5 couples each: 70 seats, and 7
# hall windows of two slots, 10 couples = 20 people each. Where the day cap (resp. the
# on-site cap) is at least that sum, the sum of the slot caps alone already keeps it
# (the day or hall cap is redundant); one below, it binds and must refuse on its own.
@pytest.mark.parametrize(
    ("day_cap", "onsite_cap", "admitted", "refusals"),
    [
        (70, 20, 70, {"slot-full"}),  # both caps covered by the slot caps
        (69, 20, 69, {"slot-full", "day-full"}),  # the day cap binds
        (70, 18, 63, {"slot-full", "onsite-full"}),  # the hall cap binds: 9 couples an hour
    ],
    ids=["covered", "day-binds", "hall-binds"],
)
async def test_day_and_onsite_caps_hold_for_a_spread_of_bookings(
    client: httpx.AsyncClient, day_cap: int, onsite_cap: int, admitted: int, refusals: set[str]
) -> None:
    from scheduler.db.tables import OfficeDay, OnsiteWindow, Slot

    office_id = await make_office(slot_cap=5, day_cap=day_cap, onsite_cap=onsite_cap)
    day = (await open_days(client))[0]
    slot_ids = [s["id"] for s in day["slots"]]
    assert len(slot_ids) == 14
    attempts = [slot_ids[i % len(slot_ids)] for i in range(ATTEMPTS)]
    random.Random(day_cap * 100 + onsite_cap).shuffle(attempts)

    results = outcomes(await _book_all(client, attempts))

    assert results[(201, "")] == admitted, results
    assert sum(results.values()) == ATTEMPTS
    assert {slug for (status, slug) in results if status == 409} <= refusals, results
    when = date.fromisoformat(day["date"])
    slots = await Slot.select().where((Slot.office == office_id) & (Slot.day == when))
    assert sum(s["booked"] for s in slots) == admitted <= day_cap
    # Covered where the slot caps keep the day cap: its row is not even taken.
    assert {s["day_covered"] for s in slots} == {day_cap >= 70}
    row = (
        await OfficeDay.select()
        .where((OfficeDay.office == office_id) & (OfficeDay.day == when))
        .first()
    )
    assert row["booked"] == (0 if day_cap >= 70 else admitted)
    windows = await OnsiteWindow.select().where(
        (OnsiteWindow.office == office_id) & (OnsiteWindow.people > 0)
    )
    assert len(windows) == 7
    assert all(w["people"] <= onsite_cap for w in windows), windows
    assert (await assert_counters_consistent())["active"] == admitted


async def _book_one(client: httpx.AsyncClient, slot_id: int) -> dict[str, Any] | None:
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert resp.status_code < 500, resp.text
    return resp.json() if resp.status_code == 201 else None


async def test_cancel_rebook_and_move_storm_keeps_counters_exact(client: httpx.AsyncClient) -> None:
    """Cancels (some twice), moves (some racing a cancel of the same booking),
    and new bookings all at once, over tight caps on two days, for several rounds."""
    await make_office(slot_cap=3, day_cap=8, onsite_cap=8)
    days = (await open_days(client))[:2]
    slot_ids = [s["id"] for d in days for s in d["slots"][:4]]  # 09:00-10:30 on two days
    rng = random.Random(20261128)
    booked: list[dict[str, Any]] = []
    for slot_id in slot_ids:
        for _ in range(2):
            held = await _book_one(client, slot_id)
            if held is not None:
                booked.append(held)
    assert booked
    await assert_counters_consistent()

    statuses: Counter[tuple[int, str]] = Counter()
    for _round in range(3):
        calls = []
        for held in booked:
            ref, token = held["reference"], {"X-Manage-Token": held["manage_token"]}
            action = rng.choice(("cancel", "move", "move", "cancel+move", "cancel+cancel", "keep"))
            if "cancel" in action:
                calls.append(client.post(f"/api/v1/appointments/{ref}/cancel", headers=token))
            if "move" in action:
                calls.append(
                    client.post(
                        f"/api/v1/appointments/{ref}/move",
                        json={"slot_id": rng.choice(slot_ids)},
                        headers=token,
                    )
                )
            if action == "cancel+cancel":
                calls.append(client.post(f"/api/v1/appointments/{ref}/cancel", headers=token))
        calls += [
            client.post("/api/v1/appointments", json=booking_body(rng.choice(slot_ids)))
            for _ in range(len(booked))
        ]
        rng.shuffle(calls)
        responses = await gather(*calls)
        statuses += outcomes(responses)
        await assert_counters_consistent()
        booked = [
            r.json()
            for r in responses
            if r.status_code == 201 and r.request.url.path == "/api/v1/appointments"
        ] + [h for h in booked if h["status"] != "cancelled"]
        # Refresh statuses so cancelled ones are not used again.
        views = await gather(
            *(
                client.get(
                    f"/api/v1/appointments/{h['reference']}",
                    headers={"X-Manage-Token": h["manage_token"]},
                )
                for h in booked
            )
        )
        booked = [
            h | {"status": v.json()["status"]}
            for h, v in zip(booked, views, strict=True)
            if v.json()["status"] in ACTIVE
        ]

    # The storm really exercised every path, including the refusals.
    codes = {code for code, _ in statuses}
    assert {200, 201, 409} <= codes, statuses
    totals = await assert_counters_consistent()
    assert totals["active"] == len(booked)


async def test_cancel_racing_a_move_of_the_same_booking(client: httpx.AsyncClient) -> None:
    """A cancel that read the booking before a concurrent move committed must not
    give back the old seat (which the move already gave back) and keep the new one.
    Each cancel is sent after a different number of reads, so that across the
    bookings the two requests interleave in many different ways."""
    await make_office(slot_cap=50)
    days = await open_days(client)
    first, second = days[0]["slots"][0]["id"], days[1]["slots"][0]["id"]
    booked = [await _book_one(client, first) for _ in range(20)]

    async def cancel_after(held: dict[str, Any], reads: int) -> httpx.Response:
        ref, token = held["reference"], {"X-Manage-Token": held["manage_token"]}
        for _ in range(reads):
            await client.get(f"/api/v1/appointments/{ref}", headers=token)
        return await client.post(f"/api/v1/appointments/{ref}/cancel", headers=token)

    calls = []
    for i, held in enumerate(booked):
        assert held is not None
        token = {"X-Manage-Token": held["manage_token"]}
        calls.append(
            client.post(
                f"/api/v1/appointments/{held['reference']}/move",
                json={"slot_id": second},
                headers=token,
            )
        )
        calls.append(cancel_after(held, i % 5))
    responses = await gather(*calls)
    results = outcomes(responses)
    assert set(results) <= {(200, ""), (409, "not-pending")}, results
    await assert_counters_consistent()
