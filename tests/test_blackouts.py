"""Blackouts: declared atomically, previewed without effect, couples moved within
every cap and told once, runs resumable, racing bookings kept out, lifting reopens."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.blackout_tables import Blackout, RescheduleRun
from scheduler.db.tables import Appointment, OfficeDay, OnsiteWindow, OutboxMessage, Slot
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.offices import reschedule
from tests.helpers import booking_body, make_office, open_slots, person, staff_token
from tests.support.day_counters import check_days

ACTIVE = ["pending_confirmation", "confirmed"]


async def _hold_many(slots: list[dict[str, Any]], count: int) -> list[str]:
    """``count`` holds spread over ``slots`` through the booking use case."""
    refs = []
    for i in range(count):
        slot = slots[i % len(slots)]
        data = booking.BookingInput(
            slot_id=slot["id"],
            service="marriage",
            party_a=booking.PartyInput(**person()),
            party_b=booking.PartyInput(**person()),
        )
        body = await booking.hold(data, now=datetime.now(UTC), settings=get_settings())
        refs.append(body["reference"])
    return refs


async def _first_open_day(
    client: httpx.AsyncClient, office: str = "GZ-TH"
) -> tuple[date, list[dict[str, Any]]]:
    """The first open day (from the day after tomorrow) and its slots."""
    start = date.today() + timedelta(days=2)
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={
            "service": "marriage",
            "from": start.isoformat(),
            "to": (start + timedelta(days=20)).isoformat(),
        },
    )
    day = next(d for d in resp.json()["days"] if d["status"] == "open")
    return date.fromisoformat(day["date"]), day["slots"]


async def _admin(
    client: httpx.AsyncClient, offices: tuple[str, ...] = ("GZ-TH",)
) -> dict[str, str]:
    return await staff_token(client, "admin.one", role="admin", offices=offices)


def _closed(day: str, **extra: Any) -> dict[str, Any]:
    return {
        "offices": ["GZ-TH"],
        "start_date": day,
        "end_date": day,
        "kind": "closed",
        "reason": {"zh-Hans": "疫情防控", "en": "Epidemic control"},
    } | extra


async def _assert_caps_hold() -> None:
    """Recount every counter from the appointments table."""
    active = await Appointment.select(
        Appointment.slot, Appointment.slot.day, Appointment.office
    ).where(Appointment.status.is_in(ACTIVE))
    per_slot: dict[int, int] = {}
    for a in active:
        per_slot[a["slot"]] = per_slot.get(a["slot"], 0) + 1
    for s in await Slot.select():
        assert s["booked"] == per_slot.get(s["id"], 0), s
        assert (
            s["booked"]
            <= (s["reduced_capacity"] if s["reduced_capacity"] is not None else s["capacity"])
            or s["blocked"]
        )
    per_day: dict[tuple[int, Any], int] = {}
    for a in active:
        per_day[(a["office"], a["slot.day"])] = per_day.get((a["office"], a["slot.day"]), 0) + 1
    # The day's true count within its cap; its stored one where its row keeps it.
    await check_days(per_day)
    assert await OfficeDay.count() > 0
    for w in await OnsiteWindow.select():
        assert 0 <= w["people"] <= w["capacity"]


async def _run_all(now: datetime | None = None) -> None:
    for run_id in await reschedule.due_runs(now or datetime.now(UTC)):
        assert await reschedule.execute(
            run_id, "test", now or datetime.now(UTC), batch=40, settings=get_settings()
        )


async def test_closed_day_moves_everyone_within_caps_and_tells_each_couple_once(
    client: httpx.AsyncClient,
) -> None:
    await make_office(slot_cap=4, day_cap=60, onsite_cap=40)
    target, first_day = await _first_open_day(client)
    refs = await _hold_many(first_day, 50)
    admin = await _admin(client)
    preview = await client.post(
        "/api/v1/admin/blackouts", json=_closed(target.isoformat(), dry_run=True), headers=admin
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["preview"]["affected"] == 50
    assert await Blackout.count() == 0 and not await Slot.exists().where(Slot.blocked.eq(True))
    declared = await client.post(
        "/api/v1/admin/blackouts", json=_closed(target.isoformat()), headers=admin
    )
    assert declared.status_code == 202, declared.text
    run = declared.json()["run"]
    assert run["total"] == 50
    await _run_all()
    inside = await Appointment.count().where(
        Appointment.slot.day == target, Appointment.status.is_in(ACTIVE)
    )
    assert inside == 0
    moved = await Appointment.select(
        Appointment.id, Appointment.slot.blocked, Appointment.status
    ).where(Appointment.reference.is_in(refs))
    assert all(m["status"] in [*ACTIVE, "needs_rebooking"] for m in moved)
    assert not any(m["slot.blocked"] for m in moved if m["status"] in ACTIVE)
    await _assert_caps_hold()
    notices = await OutboxMessage.select(OutboxMessage.appointment_id).where(
        OutboxMessage.template.is_in(["rescheduled", "needs_rebooking"])
    )
    per_appointment: dict[int, int] = {}
    for n in notices:
        per_appointment[n["appointment_id"]] = per_appointment.get(n["appointment_id"], 0) + 1
    assert sorted(per_appointment) == sorted(m["id"] for m in moved)
    assert set(per_appointment.values()) == {2}  # both partners, once each
    progress = (
        await client.get(f"/api/v1/admin/reschedule-runs/{run['id']}", headers=admin)
    ).json()
    assert progress["status"] == "done" and progress["moved"] + progress["needs_rebooking"] == 50
    assert progress["sms"]["queued"] == 100


async def test_a_killed_run_resumes_to_the_same_result(client: httpx.AsyncClient) -> None:
    # Two identical offices with identical bookings: one run uninterrupted, one killed twice.
    await make_office(code="GZ-TH", slot_cap=4, day_cap=60)
    await make_office(code="SZ-FT", slot_cap=4, day_cap=60)
    day, th = await _first_open_day(client, "GZ-TH")
    _, ft = await _first_open_day(client, "SZ-FT")
    refs_th = await _hold_many(th, 45)
    refs_ft = await _hold_many(ft, 45)
    admin = await staff_token(client, "root", role="superadmin", offices=())
    for office in ("GZ-TH", "SZ-FT"):
        resp = await client.post(
            "/api/v1/admin/blackouts",
            json=_closed(day.isoformat(), offices=[office]),
            headers=admin,
        )
        assert resp.status_code == 202
    runs = sorted(r["id"] for r in await RescheduleRun.select(RescheduleRun.id))
    now = datetime.now(UTC)
    assert await reschedule.execute(runs[0], "a", now, batch=10, settings=get_settings())

    class Killed(Exception):
        pass

    async def kill_after_two(done: int) -> None:
        if done >= 20:
            raise Killed

    for attempt in range(3):
        try:
            later = now + reschedule.LEASE * attempt + timedelta(seconds=attempt)
            await reschedule.execute(
                runs[1],
                f"b{attempt}",
                later,
                batch=10,
                after_batch=kill_after_two if attempt < 2 else None,
                settings=get_settings(),
            )
            break
        except Killed:
            continue

    async def placement(refs: list[str]) -> list[tuple[str, str]]:
        rows = await Appointment.select(
            Appointment.reference, Appointment.status, Appointment.slot.start_at
        ).where(Appointment.reference.is_in(refs))
        by_ref = {
            r["reference"]: (r["status"], r["slot.start_at"].strftime("%d %H:%M")) for r in rows
        }
        return [by_ref[r] for r in refs]

    assert await placement(refs_th) == await placement(refs_ft)
    items = await RescheduleRun.select().where(RescheduleRun.id == runs[1]).first()
    assert items["moved"] + items["needs_rebooking"] == 45 and items["status"] == "done"
    texts = await OutboxMessage.select(OutboxMessage.key).where(
        OutboxMessage.template == "rescheduled"
    )
    keys = [t["key"] for t in texts]
    assert len(keys) == len(set(keys))
    await _assert_caps_hold()


async def test_bookings_racing_the_declaration_never_land_inside(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=20, day_cap=500, onsite_cap=1000)
    first, day_slots = await _first_open_day(client)
    admin = await _admin(client)

    async def book(i: int) -> int:
        resp = await client.post(
            "/api/v1/appointments", json=booking_body(day_slots[i % len(day_slots)]["id"])
        )
        return resp.status_code

    results = await asyncio.gather(
        *[book(i) for i in range(60)],
        client.post("/api/v1/admin/blackouts", json=_closed(first.isoformat()), headers=admin),
        *[book(i) for i in range(60, 120)],
    )
    codes = [r if isinstance(r, int) else r.status_code for r in results]
    assert all(c in (201, 202, 409) for c in codes), codes
    await _run_all()
    inside = await Appointment.count().where(
        Appointment.slot.day == first, Appointment.status.is_in(ACTIVE)
    )
    assert inside == 0
    await _assert_caps_hold()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"end_date": "2020-01-01"}, 422),
        ({"offices": ["XX-NO"]}, 422),
        ({"start_date": "2020-01-01", "end_date": "2020-01-02"}, 422),
        ({"kind": "sometimes"}, 422),
        ({"start_time": "10:00"}, 422),
        ({"start_time": "12:00", "end_time": "10:00"}, 422),
        ({"surprise": True}, 422),
    ],
)
async def test_bad_declarations_change_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], status: int
) -> None:
    await make_office()
    admin = await _admin(client)
    day = (date.today() + timedelta(days=5)).isoformat()
    resp = await client.post("/api/v1/admin/blackouts", json=_closed(day) | change, headers=admin)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert await Blackout.count() == 0 and await RescheduleRun.count() == 0
    assert not await Slot.exists().where(Slot.blocked.eq(True))


async def test_identical_blackout_twice_is_409(client: httpx.AsyncClient) -> None:
    await make_office()
    admin = await _admin(client)
    day = (date.today() + timedelta(days=5)).isoformat()
    assert (
        await client.post("/api/v1/admin/blackouts", json=_closed(day), headers=admin)
    ).status_code == 202
    again = await client.post("/api/v1/admin/blackouts", json=_closed(day), headers=admin)
    assert again.status_code == 409 and again.json()["type"].endswith("/blackout-exists")
    assert await Blackout.count() == 1


async def test_permissions(client: httpx.AsyncClient) -> None:
    await make_office(code="GZ-TH")
    await make_office(code="SZ-FT")
    day = (date.today() + timedelta(days=5)).isoformat()
    assert (await client.post("/api/v1/admin/blackouts", json=_closed(day))).status_code == 401
    clerk = await staff_token(client, "clerk.x", role="clerk")
    assert (
        await client.post("/api/v1/admin/blackouts", json=_closed(day), headers=clerk)
    ).status_code == 403
    futian_admin = await staff_token(client, "admin.ft", role="admin", offices=("SZ-FT",))
    assert (
        await client.post("/api/v1/admin/blackouts", json=_closed(day), headers=futian_admin)
    ).status_code == 404
    tianhe_admin = await _admin(client)
    declared = await client.post("/api/v1/admin/blackouts", json=_closed(day), headers=tianhe_admin)
    blackout_id = declared.json()["blackout"]["id"]
    run_id = declared.json()["run"]["id"]
    # Another office's admin sees neither the blackout nor its run.
    assert (
        await client.get(f"/api/v1/admin/blackouts/{blackout_id}", headers=futian_admin)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/admin/reschedule-runs/{run_id}", headers=futian_admin)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/admin/reschedule-runs/{run_id}", headers=tianhe_admin)
    ).status_code == 200


async def test_no_new_bookings_keeps_existing_and_lift_reopens(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=5)
    slot = (await open_slots(client))[0]
    kept = (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).json()
    day = (await Slot.select(Slot.day).where(Slot.id == slot["id"]).first())["day"].isoformat()
    admin = await _admin(client)
    declared = await client.post(
        "/api/v1/admin/blackouts", json=_closed(day, kind="no_new_bookings"), headers=admin
    )
    assert declared.status_code == 202 and declared.json()["run"] is None
    refused = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/date-closed")
    days = (
        await client.get(
            "/api/v1/offices/GZ-TH/availability",
            params={"service": "marriage", "from": day, "to": day},
        )
    ).json()
    assert days["days"][0]["status"] == "blackout" and days["days"][0]["reason"] == "疫情防控"
    still = (
        await Appointment.select(Appointment.status)
        .where(Appointment.reference == kept["reference"])
        .first()
    )
    assert still["status"] == "pending_confirmation"
    lifted = await client.delete(
        f"/api/v1/admin/blackouts/{declared.json()['blackout']['id']}", headers=admin
    )
    assert lifted.status_code == 200 and lifted.json()["lifted"]
    assert (
        await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    ).status_code == 201


async def test_discouraged_day_lowers_the_cap_and_warns(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=4)
    slot = (await open_slots(client))[0]
    day = (await Slot.select(Slot.day).where(Slot.id == slot["id"]).first())["day"].isoformat()
    admin = await _admin(client)
    body = _closed(
        day,
        kind="discouraged",
        cap_percent=50,
        reason={"zh-Hans": "请避开情人节", "en": "Please avoid Feb 14"},
    )
    assert (
        await client.post("/api/v1/admin/blackouts", json=body, headers=admin)
    ).status_code == 202
    shown = (
        await client.get(
            "/api/v1/offices/GZ-TH/availability",
            params={"service": "marriage", "from": day, "to": day},
            headers={"Accept-Language": "en"},
        )
    ).json()
    assert (
        shown["days"][0]["status"] == "discouraged"
        and shown["days"][0]["reason"] == "Please avoid Feb 14"
    )
    codes = [
        (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 409]
