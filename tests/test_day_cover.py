"""The office-day row off the booking's path where the slot caps keep the day cap
(issue 16, docs/decisions.md "The day counter off the booking's path").

A day is *covered* when its slots together cannot hold more than its cap: bookings
then take only their slot row. Whoever changes a cap or adds slots works the proof
out again with every slot row of the day locked, and a day that is no longer covered
gets its counter recounted before the next booking. These tests race the changes
against bookings through the public API, on both databases.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.tables import Appointment, OfficeDay, Slot
from scheduler.domain.day_cover import SlotBound, day_covered, share_threshold
from tests.helpers import booking_body, gather, make_office, staff_token
from tests.support.day_counters import check_days
from tests.test_caps_concurrency import assert_counters_consistent, open_days, outcomes

API = "/api/v1/admin/offices"


def _share(percent: int, cap: int) -> int:
    return -(-percent * cap // 100)


def test_the_proofs_arithmetic() -> None:
    fourteen = [SlotBound(4, 0, 4)] * 14
    assert day_covered(56, fourteen) and not day_covered(55, fourteen)
    # 14 slots of 4 and a day of 100: from 28 % on the slot shares keep the day's
    # (27 %: 2 holds a slot = 28 against the day's 27).
    assert share_threshold(100, fourteen) == 28
    for percent in range(28, 101):
        assert 14 * _share(percent, 4) <= _share(percent, 100)
    assert 14 * _share(27, 4) > _share(27, 100)
    # Holds already above a slot's share count as they are.
    assert share_threshold(100, [SlotBound(4, 4, 4), *fourteen[1:]]) == 30  # 4 + 13 * 2
    assert share_threshold(10, fourteen) is None


async def _proofs(office_id: int, day: date) -> set[tuple[bool, int | None]]:
    rows = await Slot.select(Slot.day_covered, Slot.share_covered).where(
        (Slot.office == office_id) & (Slot.day == day)
    )
    return {(bool(r["day_covered"]), r["share_covered"]) for r in rows}


async def _day_row(office_id: int, day: date) -> dict[str, Any]:
    row = (
        await OfficeDay.select()
        .where((OfficeDay.office == office_id) & (OfficeDay.day == day))
        .first()
    )
    assert row is not None
    return row


async def _taken(office_id: int, day: date) -> int:
    rows = await Slot.select(Slot.booked).where((Slot.office == office_id) & (Slot.day == day))
    return sum(r["booked"] for r in rows)


def _spread(slot_ids: list[int], n: int, seed: int) -> list[int]:
    attempts = [slot_ids[i % len(slot_ids)] for i in range(n)]
    random.Random(seed).shuffle(attempts)
    return attempts


def _slugs(results: Counter[tuple[int, str]]) -> set[str]:
    return {slug for (status, slug) in results if status == 409}


async def test_raising_slot_caps_while_a_spread_books_gives_the_day_row_back_its_cap(
    client: httpx.AsyncClient,
) -> None:
    office_id = await make_office(slot_cap=5, day_cap=70)
    admin = await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))
    day = (await open_days(client))[0]
    when, slot_ids = date.fromisoformat(day["date"]), [s["id"] for s in day["slots"]]
    assert len(slot_ids) == 14 and {p[0] for p in await _proofs(office_id, when)} == {True}

    bookings = [
        client.post("/api/v1/appointments", json=booking_body(s))
        for s in _spread(slot_ids, 200, 16)
    ]
    raise_cap = client.put(f"{API}/GZ-TH/services/marriage", json={"slot_cap": 10}, headers=admin)
    answers = await gather(*bookings[:60], raise_cap, *bookings[60:])
    change = answers.pop(60)
    assert change.status_code == 200, change.text
    results = outcomes(answers)
    admitted = results[(201, "")]
    assert set(results) <= {(201, ""), (409, "slot-full"), (409, "day-full")}, results

    # 140 seats in the slots now: the day row keeps the cap again, counted right.
    assert await _proofs(office_id, when) == {(False, None)}
    assert await _taken(office_id, when) == admitted <= 70
    assert (await _day_row(office_id, when))["booked"] == admitted
    await assert_counters_consistent()

    more = outcomes(
        await gather(
            *(
                client.post("/api/v1/appointments", json=booking_body(s))
                for s in _spread(slot_ids, 120, 17)
            )
        )
    )
    assert "day-full" in _slugs(more), more
    assert await _taken(office_id, when) == 70 == (await _day_row(office_id, when))["booked"]
    await assert_counters_consistent()


async def test_a_day_cap_lowered_below_the_slot_caps_is_kept_by_its_row_and_raised_again(
    client: httpx.AsyncClient,
) -> None:
    office_id = await make_office(slot_cap=5, day_cap=70)
    admin = await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))
    day = (await open_days(client))[0]
    when, slot_ids = date.fromisoformat(day["date"]), [s["id"] for s in day["slots"]]
    first = outcomes(
        await gather(
            *(client.post("/api/v1/appointments", json=booking_body(s)) for s in slot_ids[:10])
        )
    )
    assert first == Counter({(201, ""): 10})
    assert (await _day_row(office_id, when))["booked"] == 0  # covered: the row not taken

    lowered = await client.patch(f"{API}/GZ-TH", json={"day_cap": 30}, headers=admin)
    assert lowered.status_code == 200, lowered.text
    assert await _proofs(office_id, when) == {(False, None)}
    assert (await _day_row(office_id, when))["booked"] == 10  # recounted from the slots

    # Below the day's true count: refused, and nothing of the proofs changed.
    refused = await client.patch(f"{API}/GZ-TH", json={"day_cap": 9}, headers=admin)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/cap-below-bookings")
    assert await _proofs(office_id, when) == {(False, None)}
    assert (await _day_row(office_id, when))["capacity"] == 30

    rush = outcomes(
        await gather(
            *(
                client.post("/api/v1/appointments", json=booking_body(s))
                for s in _spread(slot_ids, 100, 18)
            )
        )
    )
    assert rush[(201, "")] == 20 and "day-full" in _slugs(rush), rush
    assert await _taken(office_id, when) == 30 == (await _day_row(office_id, when))["booked"]
    await assert_counters_consistent()

    raised = await client.patch(f"{API}/GZ-TH", json={"day_cap": 1000}, headers=admin)
    assert raised.status_code == 200, raised.text
    assert {p[0] for p in await _proofs(office_id, when)} == {True}
    rest = outcomes(
        await gather(
            *(
                client.post("/api/v1/appointments", json=booking_body(s))
                for s in _spread(slot_ids, 200, 19)
            )
        )
    )
    assert rest[(201, "")] == 40 and _slugs(rest) == {"slot-full"}, rest
    assert await _taken(office_id, when) == 70
    await assert_counters_consistent()


async def test_new_slots_uncover_their_days_and_moves_cancels_and_expiry_cross_both_kinds(
    client: httpx.AsyncClient,
) -> None:
    office_id = await make_office(slot_cap=5, day_cap=70)
    root = await staff_token(client, "root.admin", role="superadmin", offices=())
    days = await open_days(client)
    d1, d2 = (date.fromisoformat(d["date"]) for d in days[:2])
    s1, s2 = ([s["id"] for s in d["slots"]] for d in days[:2])
    held = [
        r.json()
        for r in await gather(
            *(client.post("/api/v1/appointments", json=booking_body(s)) for s in s1[:8] + s2[:8])
        )
    ]
    assert all("reference" in h for h in held), held

    # A second service on d1's weekday only: 15 more seats on d1, 85 > 70.
    added = await client.put(
        f"{API}/GZ-TH/services/divorce",
        json={
            "slot_minutes": 60,
            "slot_cap": 5,
            "weekly_hours": {str(d1.weekday()): [["09:00", "12:00"]]},
        },
        headers=root,
    )
    assert added.status_code == 200, added.text
    assert await _proofs(office_id, d1) == {(False, None)}
    assert {p[0] for p in await _proofs(office_id, d2)} == {True}
    assert (await _day_row(office_id, d1))["booked"] == 8

    # Moves both ways between the kept day and the covered one, with cancels.
    calls = []
    for i, h in enumerate(held):
        url, token = f"/api/v1/appointments/{h['reference']}", {"X-Manage-Token": h["manage_token"]}
        if i % 4 == 3:
            calls.append(client.post(f"{url}/cancel", headers=token))
        else:
            target = s2[8 + i % 4] if i < 8 else s1[8 + i % 4]
            calls.append(client.post(f"{url}/move", json={"slot_id": target}, headers=token))
    assert {r.status_code for r in await gather(*calls)} == {200}
    await assert_counters_consistent()

    # d1 fills to its day cap across both services; d2 only to its slot caps.
    divorce = [
        s["id"]
        for s in await Slot.select(Slot.id).where(
            (Slot.office == office_id) & (Slot.day == d1) & (Slot.service == "divorce")
        )
    ]
    rush = outcomes(
        await gather(
            *(
                client.post(
                    "/api/v1/appointments",
                    json=booking_body(s, service="divorce" if s in divorce else "marriage"),
                )
                for s in _spread(s1 + divorce, 120, 20)
            )
        )
    )
    assert "day-full" in _slugs(rush), rush
    assert await _taken(office_id, d1) == 70 == (await _day_row(office_id, d1))["booked"]
    await assert_counters_consistent()

    # Every hold lapses: both days give every seat back.
    from scheduler.settings import get_settings
    from scheduler.usecases.booking.lifecycle import expire_holds

    assert await expire_holds(datetime.now(UTC) + timedelta(days=1), get_settings(), batch=500)
    assert not await Appointment.exists().where(Appointment.status == "pending_confirmation")
    assert await _taken(office_id, d1) == 0 == await _taken(office_id, d2)
    assert (await _day_row(office_id, d1))["booked"] == 0
    await assert_counters_consistent()


@pytest.mark.parametrize(("percent", "seated"), [(10, 10), (50, 14)])
async def test_the_day_share_below_and_above_the_proven_percent(
    db: None, percent: int, seated: int
) -> None:
    """14 slots of 4, a day of 100: the slot shares keep the day's from 28 % on. At
    50 % every slot's hold takes its seat without the day row; at 10 % the day's
    share (10) binds, counted from the slots under the day row's lock."""
    from scheduler.app import create_app
    from scheduler.settings import get_settings

    office_id = await make_office(slot_cap=4, day_cap=100)
    app = create_app(replace(get_settings(), hold_unconfirmed_percent=percent))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        day = (await open_days(client))[0]
        when, slot_ids = date.fromisoformat(day["date"]), [s["id"] for s in day["slots"]]
        assert await _proofs(office_id, when) == {(True, 28)}
        answers = await gather(
            *(client.post("/api/v1/appointments", json=booking_body(s)) for s in slot_ids)
        )
    assert [r.status_code for r in answers] == [201] * 14
    assert sum(r.json().get("seat_held", True) for r in answers) == seated
    slots = await Slot.select(Slot.held).where((Slot.office == office_id) & (Slot.day == when))
    assert sum(s["held"] for s in slots) == seated
    assert (await _day_row(office_id, when))["held"] == 0  # the row counted no hold
    await check_days()


async def test_cap_changes_storming_a_spread_never_deadlock_nor_overbook(
    client: httpx.AsyncClient,
) -> None:
    """Day and slot caps changed back and forth (covered, kept by the row, covered
    again) while bookings, moves and cancels run on the day: no deadlock (a 5xx), no
    cap exceeded at any step, every counter right after each round."""
    office_id = await make_office(slot_cap=5, day_cap=70)
    admin = await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))
    day = (await open_days(client))[0]
    when, slot_ids = date.fromisoformat(day["date"]), [s["id"] for s in day["slots"]]
    changes = [
        ("patch", {"day_cap": 40}),
        ("put", {"slot_cap": 6}),
        ("patch", {"day_cap": 1000}),
        ("put", {"slot_cap": 5}),
        ("patch", {"day_cap": 60}),
    ]
    held: list[dict[str, Any]] = []
    for round_, (verb, body) in enumerate(changes):
        url = f"{API}/GZ-TH" if verb == "patch" else f"{API}/GZ-TH/services/marriage"
        change = (
            client.patch(url, json=body, headers=admin)
            if verb == "patch"
            else client.put(url, json=body, headers=admin)
        )
        calls = [
            client.post("/api/v1/appointments", json=booking_body(s))
            for s in _spread(slot_ids, 40, round_)
        ]
        for h in held[:6]:
            url_h, token = (
                f"/api/v1/appointments/{h['reference']}",
                {"X-Manage-Token": h["manage_token"]},
            )
            calls.append(client.post(f"{url_h}/cancel", headers=token))
        for h in held[6:12]:
            calls.append(
                client.post(
                    f"/api/v1/appointments/{h['reference']}/move",
                    json={"slot_id": random.Random(round_).choice(slot_ids)},
                    headers={"X-Manage-Token": h["manage_token"]},
                )
            )
        answers = await gather(*calls[:20], change, *calls[20:])
        assert all(r.status_code < 500 for r in answers), [
            r.text for r in answers if r.status_code >= 500
        ]
        made = answers[20]
        assert made.status_code in (200, 409), made.text
        held = [
            r.json()
            for r in answers
            if r.status_code == 201 and r.request.url.path == "/api/v1/appointments"
        ] + held[12:]
        cap = (await _day_row(office_id, when))["capacity"]
        assert await _taken(office_id, when) <= cap
        await assert_counters_consistent()
