"""The availability read (plain statements, the local clock worked out once per day)
answers exactly what the Piccolo-built read before it answered, on a calendar with
everything that changes a day or a slot: closed hours, whole-day and service-only
blackouts, a lifted one, a discouraged day, a suspension, a lottery date, a holiday,
full slots, a full day, full and nearly full on-site windows, reduced caps, past
slots, and an office whose zone is not a whole number of hours from UTC."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.db.audit import NamedActor
from scheduler.db.tables import Office, OfficeDay, OfficeService, OnsiteWindow, Slot
from scheduler.kernel.errors import DomainError
from scheduler.settings import get_settings
from scheduler.usecases.calendar import holidays as holiday_calendar
from scheduler.usecases.calendar import slots
from scheduler.usecases.lottery import dates as lottery_dates
from scheduler.usecases.offices import blackouts, suspensions
from tests.availability_reference import availability as reference
from tests.helpers import WEEKDAYS_9_TO_5, make_office

ACTOR = NamedActor("test")
REASON = {"zh-Hans": "设备检修", "zh-Hant": "設備檢修", "en": "Maintenance"}
ONLY_ZH = {"zh-Hans": "系统升级"}  # other languages fall back to it


async def _office_in(code: str, timezone: str, days_ahead: int, slot_minutes: int) -> None:
    rows = await Office.insert(
        Office(
            code=code,
            name_zh=f"{code} 婚姻登记处",
            name_en=f"{code} Registry",
            timezone=timezone,
            region="abroad",
            day_cap=1000,
            onsite_cap=1000,
            booking_days_ahead=days_ahead,
        )
    ).returning(Office.id)
    await OfficeService.insert(
        OfficeService(
            office=rows[0]["id"],
            service="marriage",
            slot_minutes=slot_minutes,
            slot_cap=3,
            weekly_hours=WEEKDAYS_9_TO_5,
        )
    )


async def _varied_calendar(now: datetime) -> None:
    await make_office(slot_cap=4, days_ahead=60, services=("marriage", "ceremony"))
    # Half an hour off UTC (the on-site hour is not a UTC hour), and a zone whose
    # clocks change within reach (2027-03-28 in London): the per-slot conversion path.
    await _office_in("IN-KOL", "Asia/Kolkata", 60, 45)
    await _office_in("UK-LON", "Europe/London", 130, 30)
    await slots.generate_slots(now)
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()

    def day(n: int) -> date:
        return today + timedelta(days=n)

    declarations = [
        blackouts.Declaration("closed", day(3), day(3), offices=["GZ-TH"], reason=REASON),
        blackouts.Declaration(
            "closed",
            day(4),
            day(4),
            offices=["GZ-TH"],
            start_time=time(9),
            end_time=time(11),
            reason=ONLY_ZH,
        ),
        blackouts.Declaration(
            "discouraged", day(5), day(6), offices=["GZ-TH"], cap_percent=50, reason=ONLY_ZH
        ),
        blackouts.Declaration(
            "no_new_bookings", day(7), day(7), offices=["GZ-TH", "IN-KOL"], reason=REASON
        ),
        blackouts.Declaration(
            "closed", day(8), day(9), offices=["GZ-TH"], services=["ceremony"], reason=REASON
        ),
        # Overlapping: the closed day keeps "blackout" whatever the order.
        blackouts.Declaration("discouraged", day(10), day(11), offices=["GZ-TH"], reason=REASON),
        blackouts.Declaration("closed", day(11), day(11), offices=["GZ-TH"], reason=ONLY_ZH),
        blackouts.Declaration("closed", day(12), day(12), offices=["IN-KOL"], reason=REASON),
        # Two closures of one day: the first declared gives the reason shown.
        blackouts.Declaration("closed", day(19), day(19), offices=["GZ-TH"], reason=REASON),
        blackouts.Declaration("closed", day(19), day(20), offices=["GZ-TH"], reason=ONLY_ZH),
    ]
    for decl in declarations:
        await blackouts.declare(
            decl, now=now, actor=ACTOR, scope=None, dry_run=False, settings=get_settings()
        )
    lifted = await blackouts.declare(
        blackouts.Declaration("closed", day(13), day(13), offices=["GZ-TH"], reason=REASON),
        now=now,
        actor=ACTOR,
        scope=None,
        dry_run=False,
        settings=get_settings(),
    )
    await blackouts.lift(lifted["blackout"]["id"], now=now, actor=ACTOR, scope=None)
    await suspensions.suspend(
        suspensions.Suspension(["GZ-TH"], "ceremony", day(14), day(16), reason=REASON),
        now=now,
        actor=ACTOR,
        scope=None,
        settings=get_settings(),
    )
    await lottery_dates.create(
        lottery_dates.LotteryInput(day=day(25), offices=["GZ-TH"]),
        now=now,
        actor=ACTOR,
        scope=None,
    )
    # Counters as bookings would leave them: full slots, a full day, full and nearly
    # full on-site windows (two people a couple), a reduced cap.
    gz = await Office.select(Office.id).where(Office.code == "GZ-TH").first()
    assert gz is not None
    rows = (
        await Slot.select()
        .where((Slot.office == gz["id"]) & (Slot.service == "marriage") & (Slot.day == day(2)))
        .order_by(Slot.start_at)
    )
    for s in rows[:3]:
        await Slot.update({Slot.booked: s["capacity"]}).where(Slot.id == s["id"])
    await Slot.update({Slot.reduced_capacity: 1, Slot.booked: 1}).where(Slot.id == rows[4]["id"])
    await Slot.update({Slot.reduced_capacity: 2}).where(Slot.id == rows[5]["id"])
    # A full day: its seats taken is the sum over its slots (issue 16), none here, so
    # the day is made full by a cap of none.
    await OfficeDay.update({OfficeDay.capacity: 0}).where(
        (OfficeDay.office == gz["id"]) & (OfficeDay.day == day(17))
    )
    windows = (
        await OnsiteWindow.select()
        .where(OnsiteWindow.office == gz["id"])
        .order_by(OnsiteWindow.window_start)
    )
    later = [w for w in windows if w["window_start"].astimezone(UTC).date() >= day(18)]
    await OnsiteWindow.update({OnsiteWindow.people: OnsiteWindow.capacity}).where(
        OnsiteWindow.id == later[1]["id"]
    )
    await OnsiteWindow.update({OnsiteWindow.people: OnsiteWindow.capacity - 1}).where(
        OnsiteWindow.id == later[2]["id"]
    )
    await OnsiteWindow.update({OnsiteWindow.people: OnsiteWindow.capacity - 3}).where(
        OnsiteWindow.id == later[3]["id"]
    )


async def _both(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """The served read and the reference, each a result or the refusal it raised."""
    out = []
    for read in (slots.availability, reference):
        try:
            out.append(await read(*args, **kwargs))
        except DomainError as exc:
            out.append(("refused", exc.args, exc.__dict__))
    return out[0], out[1]


async def test_the_plain_read_answers_what_the_old_read_answered(db: None) -> None:
    now = datetime.now(UTC)
    await _varied_calendar(now)
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    # Later moments too: part of a day past, a day past, late in the window.
    moments = [now, now + timedelta(hours=7, minutes=13), now + timedelta(days=1, hours=2)]
    ranges: list[tuple[date | None, date | None]] = [
        (None, None),
        (today, today + timedelta(days=61)),
        (today + timedelta(days=2), today + timedelta(days=2)),
        (today + timedelta(days=20), today + timedelta(days=40)),
        (today - timedelta(days=3), today + timedelta(days=5)),
    ]
    spring = [(date(2027, 3, 20), date(2027, 4, 2))] if today < date(2027, 1, 1) else []
    compared = statuses = 0
    seen: set[str] = set()
    holidays: set[str] = set()
    for moment in moments:
        for code in ("GZ-TH", "IN-KOL", "UK-LON", "gz-th"):
            for service in ("marriage", "ceremony"):
                for start, end in ranges + (spring if code == "UK-LON" else []):
                    for locale in ("zh-Hans", "zh-Hant", "en"):
                        new, old = await _both(code, service, start, end, moment, locale=locale)
                        assert new == old, (code, service, start, end, moment, locale)
                        # Same keys in the same order: the JSON bodies are the same bytes.
                        assert json.dumps(new, default=str) == json.dumps(old, default=str)
                        compared += 1
                        if isinstance(new, dict):
                            statuses += len(new["days"])
                            seen |= {d["status"] for d in new["days"]}
                            holidays |= {
                                d["date"]
                                for d in new["days"]
                                if d["status"] == "closed" and d["reason"]
                            }
    assert compared == 3 * 2 * 3 * (4 * 5 + len(spring))
    # The calendar really was varied.
    assert {"open", "full", "closed", "blackout", "discouraged", "lottery", "past"} <= seen
    assert "not_yet_open" in seen and statuses > 1000
    # A holiday with its reason, whenever the 60 days ahead hold one (not every
    # stretch of 60 days does: early October to late November holds none).
    calendar = await holiday_calendar.cached()
    ahead = [today + timedelta(days=n) for n in range(2, 60)]
    if any(holiday_calendar.reason(calendar, d, "en") for d in ahead):
        assert holidays


@pytest.mark.parametrize(
    ("code", "service", "start", "end"),
    [
        ("NOPE", "marriage", None, None),
        ("GZ-TH\x00", "marriage", None, None),
        ("GZ-TH", "tea", None, None),
        ("GZ-TH", "marriage\x00", None, None),
        ("NOPE", "marriage\x00", None, None),
        ("GZ-TH", "tea", date(1999, 1, 1), None),
        ("GZ-TH", "marriage", date.today() + timedelta(days=9), date.today()),
        ("GZ-TH", "marriage", date.today(), date.today() + timedelta(days=70)),
    ],
)
async def test_refusals_are_the_same(
    db: None, code: str, service: str, start: date | None, end: date | None
) -> None:
    await make_office()
    new, old = await _both(code, service, start, end, datetime.now(UTC))
    assert new[0] == "refused" and new == old


def test_a_day_with_a_clock_change_is_left_to_the_conversion() -> None:
    london = ZoneInfo("Europe/London")
    offsets = slots._day_offsets(london, date(2027, 3, 27), date(2027, 3, 29))
    assert offsets == {date(2027, 3, 27): 0, date(2027, 3, 29): 3600}
    assert slots._day_offsets(ZoneInfo("Asia/Kolkata"), date(2027, 1, 1), date(2027, 1, 1)) == {
        date(2027, 1, 1): 19800
    }
