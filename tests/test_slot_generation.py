"""Slot generation: the working calendar (holidays, make-up workdays), UTC storage
shown in the office's local time, and idempotent daily runs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.helpers import WEEKDAYS_9_TO_5, booking_body, make_office, open_slots
from tests.test_caps_concurrency import assert_counters_consistent

MON_FRI_AND_SAT_MORNING = {
    **{str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(5)},
    "5": [["09:00", "12:00"]],
}
FULL_DAY = 14  # 30-minute slots in 7 opening hours


def _office(**overrides: Any) -> Any:
    from scheduler.db.records import OfficeRecord

    row = {
        "id": 1,
        "code": "GZ-TH",
        "name_zh": "天河区婚姻登记处",
        "name_en": "Tianhe Marriage Registry",
        "address_zh": "",
        "address_en": "",
        "region": "",
        "timezone": "Asia/Shanghai",
        "counters": 1,
        "booking_days_ahead": 20,
        "booking_opens_at": "08:30",
        "day_cap": 100,
        "onsite_cap": 40,
        "hold_minutes": 15,
        "active": True,
        "designated": False,
    }
    return OfficeRecord.from_row(row | overrides)


SERVICE = {
    "service": "marriage",
    "weekly_hours": MON_FRI_AND_SAT_MORNING,
    "slot_minutes": 30,
    "slot_cap": 4,
}


def _calendar() -> Any:
    from scheduler.domain.holidays import WorkCalendar
    from scheduler.usecases.calendar.holidays import shipped_notices, statutory_rules

    return WorkCalendar(statutory_rules(), shipped_notices())


def test_plan_around_mid_autumn_and_national_day_2026() -> None:
    """2026 notice: Mid-Autumn Fri 25 - Sun 27 Sep (Sat 26 Sep closed although the
    office opens on Saturdays); National Day 1-7 Oct (Sat 3 Oct included); Sat 10 Oct
    is a make-up workday, so it runs the full weekday schedule."""
    from scheduler.usecases.calendar.slots import plan_office

    now = datetime(2026, 9, 25, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: today's booking not open yet
    slots, days, windows = plan_office(_office(), [SERVICE], now, _calendar())
    per_day = Counter(s.day for s in slots)

    expected = {
        date(2026, 9, 28): FULL_DAY,
        date(2026, 9, 29): FULL_DAY,
        date(2026, 9, 30): FULL_DAY,
        date(2026, 10, 8): FULL_DAY,
        date(2026, 10, 9): FULL_DAY,
        date(2026, 10, 10): FULL_DAY,  # make-up workday: weekday hours, not Saturday's
        date(2026, 10, 12): FULL_DAY,
        date(2026, 10, 13): FULL_DAY,
        date(2026, 10, 14): FULL_DAY,  # last bookable day (20 days ahead, counting today)
        date(2026, 10, 15): FULL_DAY,  # the extra day, ready when its booking opens
    }
    assert dict(per_day) == expected
    assert sorted(d.day for d in days) == sorted(expected)
    assert all(d.capacity == 100 and d.booked == 0 for d in days)

    for s in slots:
        assert s.start_at.utcoffset() == timedelta(0)
        assert s.end_at - s.start_at == timedelta(minutes=30)
        assert s.start_at.astimezone(ZoneInfo("Asia/Shanghai")).date() == s.day
        assert (s.capacity, s.booked) == (4, 0)
    first = min(s.start_at for s in slots if s.day == date(2026, 9, 28))
    assert first == datetime(2026, 9, 28, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    # One hall window per local opening hour: 7 on a full day, no Saturday morning left.
    assert len(windows) == 7 * len(expected)
    assert {w.window_start.minute for w in windows} == {0}
    assert all(w.capacity == 40 and w.people == 0 for w in windows)


def test_plan_window_moves_when_booking_opens() -> None:
    """At 08:30 local the next day's booking opens, and one more day is planned."""
    from scheduler.usecases.calendar.slots import plan_office

    every_day = SERVICE | {"weekly_hours": WEEKDAYS_9_TO_5}
    before = plan_office(
        _office(), [every_day], datetime(2026, 10, 12, 0, 29, tzinfo=UTC), _calendar()
    )[0]
    after = plan_office(
        _office(), [every_day], datetime(2026, 10, 12, 0, 30, tzinfo=UTC), _calendar()
    )[0]
    # 12 Oct + 19 days = 31 Oct is the last bookable day before 08:30, plus the extra day.
    assert min(s.day for s in before) == date(2026, 10, 12)
    assert max(s.day for s in before) == date(2026, 11, 1)
    assert max(s.day for s in after) == date(2026, 11, 2)


def test_plan_in_a_half_hour_zone_uses_local_hours() -> None:
    """Kathmandu is UTC+05:45: local 09:00 is 03:15 UTC, and the hall windows
    follow the local clock hours."""
    from scheduler.usecases.calendar.slots import plan_office

    tz = ZoneInfo("Asia/Kathmandu")
    office = _office(timezone="Asia/Kathmandu")
    now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    slots, _days, windows = plan_office(office, [SERVICE], now, _calendar())
    day = date(2026, 12, 2)  # a Wednesday
    starts = sorted(s.start_at for s in slots if s.day == day)
    assert starts[0] == datetime(2026, 12, 2, 3, 15, tzinfo=UTC)
    assert [t.astimezone(tz).strftime("%H:%M") for t in starts[:3]] == ["09:00", "09:30", "10:00"]
    assert {w.window_start.astimezone(tz).minute for w in windows} == {0}
    assert {w.window_start.minute for w in windows} == {15}


async def _snapshot() -> dict[str, Any]:
    from scheduler.db.tables import OfficeDay, OnsiteWindow, Slot

    slots = await Slot.select()
    taken: dict[tuple[int, Any], int] = {}
    for s in slots:  # a day's count is the sum over its slots (issue 16)
        taken[(s["office"], s["day"])] = taken.get((s["office"], s["day"]), 0) + s["booked"]
    return {
        "slots": {s["id"]: (s["start_at"], s["capacity"], s["booked"]) for s in slots},
        "days": {
            (d["office"], d["day"]): (d["capacity"], taken.get((d["office"], d["day"]), 0))
            for d in await OfficeDay.select()
        },
        "windows": {
            (w["office"], w["window_start"]): (w["capacity"], w["people"])
            for w in await OnsiteWindow.select()
        },
    }


async def test_generate_slots_is_idempotent_and_keeps_counters(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import Slot
    from scheduler.usecases.calendar.slots import generate_slots

    await make_office(slot_cap=5)
    slot_id = (await open_slots(client))[0]["id"]
    for _ in range(2):
        resp = await client.post("/api/v1/appointments", json=booking_body(slot_id))
        assert resp.status_code == 201, resp.text
    before = await _snapshot()
    assert before["slots"][slot_id][2] == 2
    assert sorted(v[1] for v in before["days"].values())[-1] == 2
    assert sorted(v[1] for v in before["windows"].values())[-1] == 4

    now = datetime.now(UTC)
    await generate_slots(now)
    await generate_slots(now)
    assert await _snapshot() == before
    assert {s["id"]: s["remaining"] for s in await open_slots(client)}[slot_id] == 3

    # A day later only the days that came into the window are added.
    await generate_slots(now + timedelta(days=1))
    after = await _snapshot()
    for part in ("slots", "days", "windows"):
        assert {k: v for k, v in after[part].items() if k in before[part]} == before[part]
    new_days = {
        s["day"] for s in await Slot.select(Slot.day).where(Slot.id.not_in(list(before["slots"])))
    }
    assert len(new_days) <= 1 and all(d > max(k[1] for k in before["days"]) for d in new_days)
    await assert_counters_consistent()


async def test_statutory_holidays_get_no_slots(client: httpx.AsyncClient) -> None:
    """An office open every day of the week, generated as the job would have run
    on 25 Sep 2026: no slots on any day of the notice's blocks (weekends included),
    slots on the days around them."""
    from scheduler.db.tables import Slot
    from scheduler.usecases.calendar.slots import generate_slots

    office_id = await make_office(code="GZ-HD", weekly_hours=WEEKDAYS_9_TO_5, days_ahead=20)
    await generate_slots(datetime(2026, 9, 25, 1, 0, tzinfo=UTC))
    rows = await Slot.select(Slot.day).where(
        (Slot.office == office_id)
        & (Slot.day >= date(2026, 9, 24))
        & (Slot.day <= date(2026, 10, 12))
    )
    days = {r["day"] for r in rows}
    holidays = {date(2026, 9, d) for d in (25, 26, 27)} | {date(2026, 10, d) for d in range(1, 8)}
    assert not days & holidays
    assert {date(2026, 9, 28), date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 10)} <= days


async def test_slots_are_stored_in_utc_and_shown_in_local_time(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import Office, OnsiteWindow, Slot
    from scheduler.usecases.calendar.slots import generate_slots

    office_id = await make_office(code="KTM-1")
    # The same office in Kathmandu (UTC+05:45): regenerate its rows in that zone.
    await Office.update({Office.timezone: "Asia/Kathmandu"}).where(Office.id == office_id)
    await Slot.delete().where(Slot.office == office_id)
    await OnsiteWindow.delete().where(OnsiteWindow.office == office_id)
    await generate_slots(datetime.now(UTC))

    offered = await open_slots(client, office="KTM-1")
    first = offered[0]
    assert first["start"] == "09:00" and first["end"] == "09:30"
    row = await Slot.select().where(Slot.id == first["id"]).first()
    assert row["start_at"].utcoffset() == timedelta(0)
    assert (row["start_at"].hour, row["start_at"].minute) == (3, 15)
    windows = await OnsiteWindow.select().where(OnsiteWindow.office == office_id)
    assert windows and {w["window_start"].minute for w in windows} == {15}

    resp = await client.post("/api/v1/appointments", json=booking_body(first["id"]))
    assert resp.status_code == 201, resp.text
    slot = resp.json()["slot"]
    assert (slot["start"], slot["date"]) == ("09:00", row["day"].isoformat())
    assert slot["start_at"].endswith("+05:45")
    assert datetime.fromisoformat(slot["start_at"]) == row["start_at"]
    await assert_counters_consistent()
