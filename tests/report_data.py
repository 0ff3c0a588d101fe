"""A known data set for the report tests.

The future is made through the public and staff APIs (bookings, confirmations,
cancellations, a blackout and its reschedule run); the past cannot be made that way
(the API refuses past slots), so past days are written as the rows those APIs would
have left: slots, office days, appointments in every status, queue tickets with
their check-in and call events, outbox messages with delivery outcomes. A seeded
random generator varies the figures; the tests compute the expected ones from
these tables themselves.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from scheduler.db.blackout_tables import RescheduleRun
from scheduler.db.queue_tables import QueueTicket
from scheduler.db.tables import (
    Appointment,
    AppointmentEvent,
    Office,
    OfficeDay,
    OutboxMessage,
    Slot,
)
from scheduler.settings import get_settings
from scheduler.usecases.offices import reschedule
from tests.helpers import booking_body, make_office, sms_codes, staff_token

TZ = ZoneInfo("Asia/Shanghai")
PAST_DAYS = 6
STATUSES = (
    "confirmed",
    "completed",
    "completed",
    "no_show",
    "cancelled",
    "expired",
    "checked_in",
    "called",
    "serving",
    "needs_rebooking",
)
QUEUED = ("checked_in", "called", "serving", "completed", "no_show")
SMS_OUTCOMES = ("delivered", "delivered", "delivered", "failed", "undelivered", "dead", "sent")
ERROR_CODES = ("30003", "30005", "21211", None)


def today() -> date:
    return datetime.now(UTC).astimezone(TZ).date()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), TZ).astimezone(UTC)


async def _office_id(code: str) -> int:
    row = await Office.select(Office.id).where(Office.code == code).first()
    assert row is not None
    return int(row["id"])


async def past_history(code: str, rng: random.Random) -> None:
    """PAST_DAYS days of finished business at one office, as rows."""
    office = await _office_id(code)
    for back in range(1, PAST_DAYS + 1):
        day = today() - timedelta(days=back)
        await OfficeDay.insert(OfficeDay(office=office, day=day, capacity=rng.randint(4, 14)))
        for hour in (9, 10, 14):
            if rng.random() < 0.2:
                continue
            start = local(day, hour)
            blocked = rng.random() < 0.15
            reduced = rng.choice([None, None, None, 2])
            slot_rows = await Slot.insert(
                Slot(
                    office=office,
                    service=rng.choice(["marriage", "divorce"]),
                    day=day,
                    start_at=start,
                    end_at=start + timedelta(minutes=30),
                    capacity=rng.randint(2, 6),
                    blocked=blocked,
                    reduced_capacity=reduced,
                )
            ).returning(Slot.id)
            for _ in range(rng.randint(0, 5)):
                await _appointment(office, code, slot_rows[0]["id"], start, day, rng)


async def _appointment(
    office: int, code: str, slot: int, start: datetime, day: date, rng: random.Random
) -> None:
    status = rng.choice(STATUSES)
    created = start - timedelta(hours=rng.uniform(0.5, 24 * 45))
    confirmed = status not in ("expired",) and rng.random() < 0.9
    rows = await Appointment.insert(
        Appointment(
            reference=f"T{secrets.token_hex(6).upper()}",
            manage_token_hash=secrets.token_hex(32),
            office=office,
            slot=slot,
            service="marriage",
            status=status,
            created_at=created,
            confirmed_at=created + timedelta(minutes=3) if confirmed else None,
            cancelled_at=start - timedelta(hours=3) if status == "cancelled" else None,
        )
    ).returning(Appointment.id)
    appointment = rows[0]["id"]
    if status in QUEUED:
        checked_in = start + timedelta(minutes=rng.randint(-30, 20))
        await QueueTicket.insert(
            QueueTicket(
                office=office,
                day=day,
                appointment=appointment,
                service="marriage",
                label=f"M{appointment % 1000:03d}",
                status="waiting",
                order_at=checked_in,
                checked_in_at=checked_in,
            )
        )
        # A stray call event before the check-in (an earlier ticket) must not count.
        if rng.random() < 0.2:
            await _event(appointment, "called", checked_in - timedelta(minutes=40))
        if status != "checked_in":
            first = checked_in + timedelta(minutes=rng.uniform(0, 75))
            calls = 3 if status == "no_show" else rng.randint(1, 2)
            for n in range(calls):
                await _event(appointment, "called", first + timedelta(minutes=4 * n))
    for n in range(rng.randint(1, 3)):
        outcome = rng.choice(SMS_OUTCOMES)
        # Late-evening UTC lands on the next local day: the report must use local days.
        queued = created + timedelta(hours=rng.choice([0, 1, 9, 15]) + n)
        await OutboxMessage.insert(
            OutboxMessage(
                key=f"test:{appointment}:{n}",
                to_phone="+8613800138000",
                template="reminder",
                locale="zh-Hans",
                status=outcome,
                created_at=queued,
                due_at=queued,
                error_code=rng.choice(ERROR_CODES)
                if outcome in ("failed", "undelivered")
                else None,
                appointment_id=appointment,
            )
        )


async def _event(appointment: int, kind: str, at: datetime) -> None:
    await AppointmentEvent.insert(
        AppointmentEvent(appointment=appointment, kind=kind, actor="th.clerk", at=at)
    )


async def book(client: httpx.AsyncClient, slot_id: int, *, confirm: bool) -> dict[str, Any]:
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert resp.status_code == 201, resp.text
    held: dict[str, Any] = resp.json()
    if confirm:
        codes = await sms_codes(held["reference"])
        for party in ("a", "b"):
            ok = await client.post(
                f"/api/v1/appointments/{held['reference']}/confirm",
                json={"party": party, "code": codes[party]},
            )
            assert ok.status_code == 200, ok.text
    return held


async def future_bookings(client: httpx.AsyncClient, code: str, rng: random.Random) -> date:
    """Bookings over the API on the next open days; some cancelled. Returns a day
    with bookings (for a blackout)."""
    first = today() + timedelta(days=2)
    resp = await client.get(
        f"/api/v1/offices/{code}/availability",
        params={
            "service": "marriage",
            "from": first.isoformat(),
            "to": (first + timedelta(days=5)).isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    open_days = [d for d in resp.json()["days"] if d["status"] == "open"][:3]
    days = [d["date"] for d in open_days]
    chosen = [s for d in open_days for s in d["slots"]]
    for slot in rng.sample(chosen, min(len(chosen), 7)):
        for _ in range(rng.randint(1, 2)):
            held = await book(client, slot["id"], confirm=rng.random() < 0.8)
            if rng.random() < 0.3:
                resp = await client.post(
                    f"/api/v1/appointments/{held['reference']}/cancel",
                    headers={"X-Manage-Token": held["manage_token"]},
                )
                assert resp.status_code == 200, resp.text
    return date.fromisoformat(days[0])


async def build(client: httpx.AsyncClient, seed: int = 7) -> dict[str, Any]:
    """Offices GZ-TH and SZ-FT with history and bookings, a run moving GZ-TH's couples
    off one day; a superadmin's bearer header."""
    rng = random.Random(seed)
    for code in ("GZ-TH", "SZ-FT"):
        await make_office(code=code, slot_cap=3, days_ahead=6)
        await past_history(code, rng)
    blackout_day = await future_bookings(client, "GZ-TH", rng)
    await future_bookings(client, "SZ-FT", rng)
    root = await staff_token(client, "root.admin", role="superadmin", offices=())
    resp = await client.post(
        "/api/v1/admin/blackouts",
        headers=root,
        json={
            "offices": ["GZ-TH"],
            "start_date": blackout_day.isoformat(),
            "end_date": blackout_day.isoformat(),
            "kind": "closed",
            "reason": {"zh-Hans": "设备检修"},
        },
    )
    assert resp.status_code == 202, resp.text
    for run in await RescheduleRun.select(RescheduleRun.id):
        assert await reschedule.execute(
            run["id"], "test", datetime.now(UTC), settings=get_settings()
        )
    # An office half an hour off the hour from UTC (data made, so only the SMS days move):
    # its messages must still fall on their local days.
    await Office.update({Office.timezone: "Asia/Kolkata"}).where(Office.code == "SZ-FT")
    # Two messages within one UTC hour, on two Kolkata days (23:50 and 00:10 local).
    sz = await Appointment.select(Appointment.id).where(
        Appointment.office == await _office_id("SZ-FT")
    )
    utc_day = today() - timedelta(days=3)
    for minute in (20, 40):
        at = datetime.combine(utc_day, time(18, minute), UTC)
        await OutboxMessage.insert(
            OutboxMessage(
                key=f"test:kolkata:{minute}",
                to_phone="+8613800138000",
                template="reminder",
                locale="zh-Hans",
                status="delivered",
                created_at=at,
                due_at=at,
                appointment_id=sz[0]["id"],
            )
        )
    return {
        "root": root,
        "from": today() - timedelta(days=PAST_DAYS + 1),
        "to": today() + timedelta(days=8),
    }
