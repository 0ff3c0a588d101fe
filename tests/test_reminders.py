"""Reminders (scheduler.usecases.booking.reminders.queue_reminders with an explicit
``now``): the day
before after the configured local hour, the same day within N hours, once each,
never for a cancelled appointment, and not inside quiet hours unless urgent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.engine import write_transaction
from scheduler.db.tables import Appointment, Office, OutboxMessage, Party, Slot
from scheduler.jobs.schedule import build_scheduler
from scheduler.notify import outbox
from scheduler.notify.sms import ConsoleBackend
from scheduler.settings import Settings, get_settings
from scheduler.usecases.booking.reminders import queue_reminders
from scheduler.usecases.policy import policies

GZ = ZoneInfo("Asia/Shanghai")
SETTINGS = replace(get_settings(), reminder_day_before_at=time(10, 0), reminder_same_day_hours=3)
_numbers = count(1)


def _at(day: int, hour: int, minute: int = 0, tz: ZoneInfo = GZ) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=tz)


async def _office(code: str = "GZ-TH", tz: str = "Asia/Shanghai") -> int:
    rows = await Office.insert(
        Office(
            code=code,
            name_zh=f"{code} 婚姻登记处",
            name_en=f"{code} Marriage Registry",
            timezone=tz,
        )
    ).returning(Office.id)
    return int(rows[0]["id"])


async def _appointment(office: int, start: datetime, status: str = "confirmed") -> int:
    """A marriage appointment of one couple at ``start`` (an aware local time)."""
    n = next(_numbers)
    slot = await Slot.insert(
        Slot(
            office=office,
            service="marriage",
            day=start.date(),
            start_at=start.astimezone(UTC),
            end_at=(start + timedelta(minutes=30)).astimezone(UTC),
            capacity=10,
            booked=1,
        )
    ).returning(Slot.id)
    appointment = await Appointment.insert(
        Appointment(
            reference=f"GZTH-{n:04d}-2345",
            manage_token_hash="0" * 64,
            office=office,
            slot=slot[0]["id"],
            service="marriage",
            status=status,
            locale="zh-Hans",
        )
    ).returning(Appointment.id)
    appointment_id = int(appointment[0]["id"])
    for role in ("a", "b"):
        await Party.insert(_party(appointment_id, role, n))
    return appointment_id


def _party(appointment_id: int, role: str, n: int) -> Party:
    return Party(
        appointment=appointment_id,
        role=role,
        name=f"测试{n}{role}",
        id_type="mainland_id",
        id_hash=f"{n}{role}",
        phone=f"+86138{n:06d}{0 if role == 'a' else 1}0",
        code_hash="x",
    )


async def _messages(template: str | None = None) -> list[dict[str, Any]]:
    query = OutboxMessage.select().order_by(OutboxMessage.key)
    if template:
        query = query.where(OutboxMessage.template == template)
    return list(await query)


async def _remind(now: datetime, settings: Settings = SETTINGS) -> None:
    await queue_reminders(now.astimezone(UTC), settings)


async def test_day_before_reminder_after_the_local_hour_and_once(db: None) -> None:
    office = await _office()
    appointment = await _appointment(office, _at(2, 9, 30))
    await _remind(_at(1, 9, 59))
    assert await _messages() == []
    for now in (_at(1, 10, 0), _at(1, 10, 5), _at(1, 18, 0)):
        await _remind(now)
    rows = await _messages("reminder_day_before")
    assert [r["key"] for r in rows] == [
        f"appointment:{appointment}:reminder_day_before:a",
        f"appointment:{appointment}:reminder_day_before:b",
    ]
    assert all(r["due_at"] == _at(1, 10, 0) for r in rows)
    # With the documents to bring (the 2025 rule set: ID card, no household
    # register), signed for mainland carriers.
    body = rows[0]["body"]
    assert body.startswith("【婚姻登记】") and "身份证" in body and "户口簿" not in body


async def test_day_before_only_for_tomorrow(db: None) -> None:
    office = await _office()
    await _appointment(office, _at(3, 9, 30))  # the day after tomorrow
    await _appointment(office, _at(1, 16, 0))  # later today: no "tomorrow" text
    await _remind(_at(1, 10, 0))
    assert await _messages("reminder_day_before") == []


async def test_the_configured_hour_is_the_offices_own(db: None) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")  # one hour ahead of Guangzhou
    guangzhou = await _appointment(await _office(), _at(2, 9, 0))
    japan = await _appointment(await _office("JP-TK", "Asia/Tokyo"), _at(2, 9, 0, tokyo))
    await _remind(_at(1, 10, 0, tokyo))  # 09:00 in Guangzhou
    keys = {r["key"].split(":")[1] for r in await _messages("reminder_day_before")}
    assert keys == {str(japan)}
    await _remind(_at(1, 10, 0))
    keys = {r["key"].split(":")[1] for r in await _messages("reminder_day_before")}
    assert keys == {str(japan), str(guangzhou)}


async def test_same_day_reminder_within_n_hours(db: None) -> None:
    office = await _office()
    appointment = await _appointment(office, _at(1, 14, 0))
    await _remind(_at(1, 10, 59))  # 3 h 1 min ahead
    assert await _messages("reminder_same_day") == []
    await _remind(_at(1, 11, 0))
    await _remind(_at(1, 12, 30))
    rows = await _messages("reminder_same_day")
    assert [r["key"] for r in rows] == [
        f"appointment:{appointment}:reminder_same_day:a",
        f"appointment:{appointment}:reminder_same_day:b",
    ]
    assert all(r["due_at"] == _at(1, 11, 0) for r in rows)


async def test_no_reminder_once_the_appointment_started(db: None) -> None:
    office = await _office()
    await _appointment(office, _at(1, 11, 0))
    await _remind(_at(1, 11, 0))
    await _remind(_at(1, 12, 0))
    assert await _messages() == []


async def test_cancelled_appointments_get_none(db: None) -> None:
    office = await _office()
    for n, status in enumerate(("cancelled", "pending_confirmation", "expired", "moved")):
        await _appointment(office, _at(2, 9, 10 * n), status)
        await _appointment(office, _at(1, 12, 10 * n), status)
    await _remind(_at(1, 10, 0))
    assert await _messages() == []


async def test_a_reminder_due_in_quiet_hours_waits_for_their_end(db: None) -> None:
    # 21:00-08:00 quiet (the default); an 08:30 appointment is within 3 h at 06:00.
    assert get_settings().sms_quiet_hours == (time(21, 0), time(8, 0))
    office = await _office()
    await _appointment(office, _at(2, 8, 30))
    await _remind(_at(2, 6, 0))
    rows = await _messages("reminder_same_day")
    assert len(rows) == 2 and all(r["due_at"] == _at(2, 8, 0) for r in rows)
    # The dispatcher leaves them alone until then.
    claimed = await outbox.claim_due(_at(2, 7, 59), "w", limit=10, lease_seconds=60)
    assert claimed == []


async def test_urgent_messages_ignore_quiet_hours(db: None) -> None:
    night = _at(1, 23, 0)
    async with write_transaction():
        for urgent in (True, False):
            await outbox.enqueue(
                key=f"closure:{urgent}",
                to_phone="+8613800138000",
                template="code",
                locale="zh-Hans",
                payload={"code": "123456", "reference": "GZTH-0001-2345", "minutes": 15},
                now=night.astimezone(UTC),
                urgent=urgent,
                tz="Asia/Shanghai",
                terms=await policies.sms_terms(get_settings()),
            )
    due = {r["key"]: r["due_at"] for r in await _messages()}
    assert due == {"closure:True": night, "closure:False": _at(2, 8, 0)}


def test_the_worker_schedules_the_reminder_job() -> None:
    jobs = build_scheduler(SETTINGS, ConsoleBackend())
    assert jobs.get_job("queue_reminders") is not None
