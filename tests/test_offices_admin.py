"""Offices admin API (issue 6): offices, services and weekly rules created and edited
with validation; caps applied to future slots (a raise shows in availability, a
lowering under bookings is refused with the numbers and changes nothing); new
hours rebuild only days without bookings; permissions for every endpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db.blackout_tables import RescheduleRun
from scheduler.db.tables import (
    Appointment,
    AuditLog,
    Office,
    OfficeDay,
    OfficeService,
    OnsiteWindow,
    OutboxMessage,
    Slot,
)
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.calendar.slots import generate_slots
from tests.helpers import booking_body, gather, make_office, person, staff_token
from tests.support.day_counters import check_days

API = "/api/v1/admin/offices"


def local_today() -> date:
    """Today in the offices' zone (Asia/Shanghai), not the test machine's."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


HOURS = {str(d): [["09:00", "11:00"]] for d in range(7)}


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row a capacity change could touch, for before/after comparisons."""
    out = {}
    tables = (Office, OfficeService, Slot, OfficeDay, OnsiteWindow, Appointment, AuditLog)
    for table in (*tables, OutboxMessage, RescheduleRun):
        out[table._meta.tablename] = list(
            await table.select().order_by(table.id).output(load_json=True)
        )
    return out


async def _hold(slot_id: int) -> str:
    body = await booking.hold(
        booking.BookingInput(
            slot_id=slot_id,
            service="marriage",
            party_a=booking.PartyInput(**person()),
            party_b=booking.PartyInput(**person()),
        ),
        now=datetime.now(UTC),
        settings=get_settings(),
    )
    return str(body["reference"])


async def _open_day(client: httpx.AsyncClient, office: str = "GZ-TH") -> dict[str, Any]:
    """The first open day from the day after tomorrow, as availability shows it."""
    start = local_today() + timedelta(days=2)
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={
            "service": "marriage",
            "from": start.isoformat(),
            "to": (start + timedelta(days=10)).isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    return next(d for d in resp.json()["days"] if d["status"] == "open")


async def _day(client: httpx.AsyncClient, day: str, office: str = "GZ-TH") -> dict[str, Any]:
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={"service": "marriage", "from": day, "to": day},
    )
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()["days"][0]
    return found


@pytest.fixture
async def offices(db: None) -> None:
    await make_office(code="GZ-TH", days_ahead=6, slot_cap=4, weekly_hours=HOURS)
    await make_office(code="SZ-FT", days_ahead=6, slot_cap=4, weekly_hours=HOURS)


@pytest.fixture
async def admin(client: httpx.AsyncClient, offices: None) -> dict[str, str]:
    """The bearer header of an admin of GZ-TH."""
    return await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))


@pytest.fixture
async def tokens(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    """Headers of an admin of GZ-TH, a superadmin and a clerk (accounts cost time: argon2)."""
    return {
        "admin": admin,
        "root": await staff_token(client, "root.admin", role="superadmin", offices=()),
        "clerk": await staff_token(client, "th.clerk", role="clerk", offices=("GZ-TH",)),
    }


async def test_permissions_of_every_endpoint(
    client: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    new_office = {"code": "BJ-DC", "name_zh": "东城", "name_en": "Dongcheng"}
    calls = [
        ("GET", API, None),
        ("POST", API, new_office),
        ("GET", f"{API}/GZ-TH", None),
        ("PATCH", f"{API}/GZ-TH", {"day_cap": 50}),
        ("PUT", f"{API}/GZ-TH/services/marriage", {"slot_cap": 5}),
        ("GET", "/api/v1/admin/suspensions", None),
        ("POST", "/api/v1/admin/suspensions", {}),
        ("DELETE", "/api/v1/admin/suspensions/1", None),
    ]
    before = await snapshot()
    for method, url, body in calls:
        anon = await client.request(method, url, json=body)
        assert anon.status_code == 401, (method, url, anon.text)
        clerk = await client.request(method, url, json=body, headers=tokens["clerk"])
        assert clerk.status_code == 403, (method, url, clerk.text)
    # An admin may not create offices; another office is not found for them.
    created = await client.post(API, json=new_office, headers=tokens["admin"])
    assert created.status_code == 403
    for method, url, body in [
        ("GET", f"{API}/SZ-FT", None),
        ("PATCH", f"{API}/SZ-FT", {"day_cap": 50}),
        ("PUT", f"{API}/SZ-FT/services/marriage", {"slot_cap": 5}),
    ]:
        resp = await client.request(method, url, json=body, headers=tokens["admin"])
        assert resp.status_code == 404, (method, url, resp.text)
    listed = await client.get(API, headers=tokens["admin"])
    assert [o["code"] for o in listed.json()] == ["GZ-TH"]
    assert await snapshot() == before
    everything = await client.get(API, headers=tokens["root"])
    assert [o["code"] for o in everything.json()] == ["GZ-TH", "SZ-FT"]


async def test_create_and_edit_with_validation_and_audit(
    client: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    root = tokens["root"]
    bad = [
        ({"code": "BJ-DC", "name_zh": "东城", "name_en": "D", "timezone": "Mars/Base"}, "timezone"),
        ({"code": "BJ-DC", "name_zh": "东城", "name_en": "D", "day_cap": -1}, "day_cap"),
        ({"code": "BJ-DC", "name_zh": "东城", "name_en": "D", "onsite_cap": -5}, "onsite_cap"),
        ({"code": "BJ-DC", "name_zh": "东城"}, "name_en"),
        ({"code": "GZ-TH", "name_zh": "重复", "name_en": "Dup"}, "code"),
        ({"code": "BJ-DC", "name_zh": "东城", "name_en": "D", "colour": "red"}, None),
    ]
    before = await snapshot()
    for body, field in bad:
        resp = await client.post(API, json=body, headers=root)
        assert resp.status_code == 422, (body, resp.text)
        problem = resp.json()
        assert problem["type"].endswith("/invalid-input")
        if field:
            assert problem["field"] == field, problem
    assert await snapshot() == before

    resp = await client.post(
        API,
        json={
            "code": "bj-dc",
            "name_zh": "北京市东城区婚姻登记处",
            "name_en": "Dongcheng Marriage Registry",
            "timezone": "Asia/Shanghai",
            "day_cap": 80,
        },
        headers=root,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["code"] == "BJ-DC" and resp.json()["day_cap"] == 80
    added = await client.put(
        f"{API}/BJ-DC/services/marriage",
        json={"slot_minutes": 60, "slot_cap": 3, "weekly_hours": {"0": [["09:00", "12:00"]]}},
        headers=root,
    )
    assert added.status_code == 200, added.text
    assert await Slot.exists().where((Slot.office.code == "BJ-DC") & (Slot.capacity == 3))

    # Bad edits: 422 naming the field, nothing stored.
    before = await snapshot()
    for url, body, field in [
        (f"{API}/BJ-DC", {"timezone": "Asia/Nowhere"}, "timezone"),
        (f"{API}/BJ-DC", {"slot_cap": 3}, None),  # a service field on the office
        (f"{API}/BJ-DC", {"hold_minutes": 0}, "hold_minutes"),
        (f"{API}/BJ-DC/services/marriage", {"slot_cap": -1}, "slot_cap"),
        (f"{API}/BJ-DC/services/marriage", {"slot_minutes": 0}, "slot_minutes"),
        (
            f"{API}/BJ-DC/services/marriage",
            {"weekly_hours": {"0": [["09:00", "12:00"], ["11:00", "14:00"]]}},
            "weekly_hours",
        ),
        (
            f"{API}/BJ-DC/services/marriage",
            {"weekly_hours": {"0": [["12:00", "09:00"]]}},
            "weekly_hours",
        ),
        (f"{API}/BJ-DC/services/marriage", {"weekly_hours": {"7": [["09:00", "12:00"]]}}, None),
        (f"{API}/BJ-DC/services/wedding", {"slot_cap": 3}, "service"),
    ]:
        resp = await client.request(
            "PATCH" if "services" not in url else "PUT", url, json=body, headers=root
        )
        assert resp.status_code == 422, (url, body, resp.text)
        if field:
            assert resp.json()["field"] == field, resp.json()
    assert await snapshot() == before

    changed = await client.patch(
        f"{API}/BJ-DC", json={"name_en": "Dongcheng District Registry", "counters": 4}, headers=root
    )
    assert changed.status_code == 200 and changed.json()["counters"] == 4
    audits = (
        await AuditLog.select()
        .where(AuditLog.object_id == "BJ-DC")
        .order_by(AuditLog.id)
        .output(load_json=True)
    )
    assert [a["action"] for a in audits] == ["office.create", "office.update"]
    assert audits[1]["before"] == {"name_en": "Dongcheng Marriage Registry", "counters": 1}
    assert audits[1]["after"] == {"name_en": "Dongcheng District Registry", "counters": 4}
    service_audit = await AuditLog.select().where(AuditLog.object_id == "BJ-DC:marriage").first()
    assert service_audit is not None and service_audit["action"] == "office.service.create"


async def test_a_raised_slot_cap_shows_in_availability(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    day = await _open_day(client)
    assert {s["remaining"] for s in day["slots"]} == {4}
    await _hold(day["slots"][0]["id"])
    resp = await client.put(f"{API}/GZ-TH/services/marriage", json={"slot_cap": 9}, headers=admin)
    assert resp.status_code == 200, resp.text
    after = await _day(client, day["date"])
    assert [s["remaining"] for s in after["slots"]] == [8] + [9] * (len(day["slots"]) - 1)
    assert {s["capacity"] for s in after["slots"]} == {9}
    # The other office is untouched, and the daily job adds nothing on top.
    other = await _open_day(client, "SZ-FT")
    assert {s["capacity"] for s in other["slots"]} == {4}
    count = await Slot.count()
    await generate_slots(datetime.now(UTC))
    assert await Slot.count() == count
    audit = (
        await AuditLog.select()
        .where(AuditLog.action == "office.service.update")
        .output(load_json=True)
        .first()
    )
    assert (
        audit is not None
        and audit["before"] == {"slot_cap": 4}
        and audit["after"] == {"slot_cap": 9}
    )


async def test_lowering_caps_under_bookings_is_refused_with_numbers_and_nothing_changes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    day = await _open_day(client)
    first = day["slots"][0]
    for _ in range(3):
        await _hold(first["id"])
    before = await snapshot()

    resp = await client.put(f"{API}/GZ-TH/services/marriage", json={"slot_cap": 2}, headers=admin)
    assert resp.status_code == 409, resp.text
    problem = resp.json()
    assert problem["type"].endswith("/cap-below-bookings") and problem["field"] == "slot_cap"
    assert problem["errors"] == [
        {"kind": "slot", "date": day["date"], "start": first["start"], "booked": 3, "new_cap": 2}
    ]
    assert f"{day['date']} {first['start']}: 3 > 2" in problem["detail"]
    assert await snapshot() == before

    # The day cap counts couples of the day; the hall cap people (two per couple).
    resp = await client.patch(f"{API}/GZ-TH", json={"day_cap": 2}, headers=admin)
    assert resp.status_code == 409 and resp.json()["errors"] == [
        {"kind": "day", "date": day["date"], "start": None, "booked": 3, "new_cap": 2}
    ]
    resp = await client.patch(
        f"{API}/GZ-TH", json={"onsite_cap": 5, "name_en": "Renamed"}, headers=admin
    )
    assert resp.status_code == 409
    [hall] = resp.json()["errors"]
    assert (hall["kind"], hall["date"], hall["booked"], hall["new_cap"]) == (
        "onsite",
        day["date"],
        6,
        5,
    )
    assert await snapshot() == before  # not even the name of the refused PATCH

    # Down to exactly what is booked is fine, and shows at once.
    ok = await client.put(f"{API}/GZ-TH/services/marriage", json={"slot_cap": 3}, headers=admin)
    assert ok.status_code == 200, ok.text
    after = await _day(client, day["date"])
    assert after["slots"][0]["remaining"] == 0 and after["slots"][1]["remaining"] == 3


async def test_new_hours_rebuild_days_without_bookings_and_keep_booked_days(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    day = await _open_day(client)
    reference = await _hold(day["slots"][0]["id"])
    booked_slots = (
        await Slot.select()
        .where((Slot.office.code == "GZ-TH") & (Slot.day == date.fromisoformat(day["date"])))
        .order_by(Slot.id)
    )
    resp = await client.put(
        f"{API}/GZ-TH/services/marriage",
        json={"slot_minutes": 60, "weekly_hours": {str(d): [["14:00", "16:00"]] for d in range(7)}},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text
    # The booked day is as it was: same slots, the couple's seat untouched.
    kept = (
        await Slot.select()
        .where((Slot.office.code == "GZ-TH") & (Slot.day == date.fromisoformat(day["date"])))
        .order_by(Slot.id)
    )
    assert kept == booked_slots
    appt = await Appointment.select().where(Appointment.reference == reference).first()
    assert appt is not None and appt["slot"] == day["slots"][0]["id"]
    # Every other future day from tomorrow runs the new rule.
    tomorrow = local_today() + timedelta(days=1)
    other_days = await Slot.select(Slot.day, Slot.start_at, Slot.end_at).where(
        (Slot.office.code == "GZ-TH")
        & (Slot.day > tomorrow)
        & (Slot.day != date.fromisoformat(day["date"]))
    )
    assert other_days, "the window has other open days"
    assert {(s["end_at"] - s["start_at"]).seconds for s in other_days} == {3600}
    later = next(
        d
        for d in (
            await client.get(
                "/api/v1/offices/GZ-TH/availability",
                params={
                    "service": "marriage",
                    "from": (date.fromisoformat(day["date"]) + timedelta(days=1)).isoformat(),
                },
            )
        ).json()["days"]
        if d["status"] == "open"
    )
    assert [(s["start"], s["end"]) for s in later["slots"]] == [
        ("14:00", "15:00"),
        ("15:00", "16:00"),
    ]
    # Idempotent: the daily job and a second save add nothing.
    count = await Slot.count()
    await generate_slots(datetime.now(UTC))
    again = await client.put(
        f"{API}/GZ-TH/services/marriage", json={"slot_minutes": 60}, headers=admin
    )
    assert again.status_code == 200
    assert await Slot.count() == count


async def assert_counters_match_a_recount() -> None:
    """Every stored counter equals a count of the appointments holding a seat."""
    from collections import Counter

    from scheduler.domain.calendar import onsite_window_start

    holding = await Appointment.select(
        Appointment.slot,
        Appointment.people,
        Appointment.slot.day,
        Appointment.slot.office,
        Appointment.slot.start_at,
    ).where(Appointment.status.is_in(["pending_confirmation", "confirmed", "needs_rebooking"]))
    tz = ZoneInfo("Asia/Shanghai")
    per_slot = Counter(a["slot"] for a in holding)
    per_day = Counter((a["slot.office"], a["slot.day"]) for a in holding)
    per_hour: Counter[tuple[int, datetime]] = Counter()
    for a in holding:
        per_hour[(a["slot.office"], onsite_window_start(a["slot.start_at"], tz))] += a["people"]
    for s in await Slot.select(Slot.id, Slot.booked):
        assert s["booked"] == per_slot[s["id"]], s
    # The day's true count within its cap; its stored one where its row keeps it.
    await check_days(dict(per_day))
    for w in await OnsiteWindow.select():
        assert w["people"] == per_hour[(w["office"], w["window_start"])], w


async def test_moving_the_excess_moves_exactly_the_latest_bookings(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    day = await _open_day(client)
    first, second = day["slots"][0], day["slots"][1]
    in_first = [await _hold(first["id"]) for _ in range(3)]
    in_second = await _hold(second["id"])
    resp = await client.put(
        f"{API}/GZ-TH/services/marriage",
        json={"slot_cap": 1, "excess": "move"},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text
    moved = resp.json()["moved"]
    rows = {
        a["reference"]: a
        for a in await Appointment.select(
            Appointment.id, Appointment.reference, Appointment.slot, Appointment.status
        )
    }
    # The two booked last in the first slot moved; the first one and the second slot's stay.
    assert sorted(moved["moved"]) == sorted(rows[r]["id"] for r in in_first[1:])
    assert rows[in_first[0]]["slot"] == first["id"]
    assert rows[in_second]["slot"] == second["id"]
    for ref in in_first[1:]:
        assert rows[ref]["slot"] not in (first["id"], second["id"])
        assert rows[ref]["status"] == "pending_confirmation"
    assert all(s["booked"] <= 1 for s in await Slot.select(Slot.booked))
    await assert_counters_match_a_recount()
    texts = await OutboxMessage.select(OutboxMessage.key).where(
        OutboxMessage.template == "rescheduled"
    )
    assert len(texts) == 4  # two partners of each moved couple, once
    audit = (
        await AuditLog.select()
        .where(AuditLog.action == "office.service.update")
        .output(load_json=True)
        .first()
    )
    assert audit is not None and sorted(audit["after"]["moved"]) == sorted(moved["moved"])


async def test_moving_the_excess_without_room_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    day = await _open_day(client)
    await _hold(day["slots"][0]["id"])
    before = await snapshot()
    resp = await client.put(
        f"{API}/GZ-TH/services/marriage",
        json={"slot_cap": 0, "excess": "move"},
        headers=admin,
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["type"].endswith("/cap-below-bookings")
    assert await snapshot() == before
    await assert_counters_match_a_recount()


async def test_a_cap_lowered_while_couples_book_never_leaves_a_slot_over_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    day = await _open_day(client)
    for round_, slot in enumerate(day["slots"][:3]):
        await _hold(slot["id"])
        cap = 3 - round_ % 2  # 3, 2, 3: every round changes the cap
        results = await gather(
            *[client.post("/api/v1/appointments", json=booking_body(slot["id"])) for _ in range(6)],
            client.put(f"{API}/GZ-TH/services/marriage", json={"slot_cap": cap}, headers=admin),
        )
        change, bookings = results[-1], results[:-1]
        assert {r.status_code for r in bookings} <= {201, 409}
        row = await Slot.select().where(Slot.id == slot["id"]).first()
        assert row is not None
        assert row["booked"] == 1 + sum(r.status_code == 201 for r in bookings)
        assert row["booked"] <= row["capacity"], (round_, row)
        if change.status_code == 200:
            assert row["capacity"] == cap
        else:
            assert change.status_code == 409, change.text
            assert change.json()["type"].endswith("/cap-below-bookings")
    await assert_counters_match_a_recount()


async def test_a_longer_booking_window_opens_the_new_days_at_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    last = max(r["day"] for r in await Slot.select(Slot.day).where(Slot.office.code == "GZ-TH"))
    resp = await client.patch(f"{API}/GZ-TH", json={"booking_days_ahead": 12}, headers=admin)
    assert resp.status_code == 200, resp.text
    days = await client.get(
        "/api/v1/offices/GZ-TH/availability",
        params={
            "service": "marriage",
            "from": (last + timedelta(days=1)).isoformat(),
            "to": (last + timedelta(days=5)).isoformat(),
        },
    )
    statuses = {d["status"] for d in days.json()["days"]}
    assert "open" in statuses and "not_yet_open" not in statuses, days.json()
    count = await Slot.count()
    await generate_slots(datetime.now(UTC))
    assert await Slot.count() == count
