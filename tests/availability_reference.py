"""The availability read as it was before issue 16 made it plain SQL (Piccolo selects,
the time-zone conversion per slot): the reference tests/test_availability_read.py
compares the served read with, on a varied calendar. Kept verbatim, only the blackout
and lottery look-ups it called are inlined here as they were."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from scheduler.db.appointments import office_view
from scheduler.db.blackout_tables import Blackout, BlackoutOffice
from scheduler.db.lottery_tables import LotteryOffice
from scheduler.db.records import OfficeRecord
from scheduler.db.tables import OfficeDay, OfficeService, OnsiteWindow, Slot
from scheduler.domain.calendar import day_status, last_bookable_day
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES, translate
from scheduler.usecases.calendar import holidays as holiday_calendar
from scheduler.usecases.calendar.closures import rule_of
from scheduler.usecases.calendar.lottery_days import LOTTERY_OVERRIDES
from scheduler.usecases.calendar.slots import _range, office_by_code


async def _day_notes(
    office_id: int, service: str, start: date, end: date
) -> dict[date, tuple[str, dict[str, str]]]:
    ids = [
        r["blackout"]
        for r in await BlackoutOffice.select(BlackoutOffice.blackout).where(
            BlackoutOffice.office == office_id
        )
    ]
    active = (
        await Blackout.select()
        .where(
            Blackout.id.is_in(ids or [-1])
            & Blackout.lifted_at.is_null()
            & (Blackout.start_date <= end)
            & (Blackout.end_date >= start)
        )
        .output(load_json=True)
    )
    notes: dict[date, tuple[str, dict[str, str]]] = {}
    for b in active:
        rule = rule_of(b)
        if rule.services and service not in rule.services:
            continue
        status = "discouraged" if rule.kind == "discouraged" else "blackout"
        day = max(rule.start_date, start)
        while day <= min(rule.end_date, end):
            if rule.start_time is None and (notes.get(day, ("",))[0] != "blackout"):
                notes[day] = (status, b["reason"] or {})
            day += timedelta(days=1)
    return notes


async def _mark_lottery_days(
    office: OfficeRecord, service: str, days: list[dict[str, Any]], locale: str
) -> None:
    if not days:
        return
    tz = office.tz
    first, last = date.fromisoformat(days[0]["date"]), date.fromisoformat(days[-1]["date"])
    rows = await LotteryOffice.select(
        LotteryOffice.day,
        LotteryOffice.lottery.id,
        LotteryOffice.lottery.opens_at,
        LotteryOffice.lottery.closes_at,
        LotteryOffice.lottery.status,
    ).where(
        (LotteryOffice.office == office.id)
        & (LotteryOffice.service == service)
        & (LotteryOffice.day >= first)
        & (LotteryOffice.day <= last)
    )
    found = {
        r["day"]: {
            "id": r["lottery.id"],
            "opens_at": r["lottery.opens_at"],
            "closes_at": r["lottery.closes_at"],
            "status": r["lottery.status"],
        }
        for r in rows
    }
    for day in days:
        info = found.get(date.fromisoformat(day["date"]))
        if info is None or day["status"] not in LOTTERY_OVERRIDES:
            continue
        opens, closes = info["opens_at"].astimezone(tz), info["closes_at"].astimezone(tz)
        day["status"] = "lottery"
        day["slots"] = []
        day["reason"] = translate(
            locale,
            "lottery.availability.reason",
            opens=f"{opens:%Y-%m-%d %H:%M}",
            closes=f"{closes:%Y-%m-%d %H:%M}",
        )
        day["lottery"] = {
            "id": info["id"],
            "opens_at": opens.isoformat(),
            "closes_at": closes.isoformat(),
            "status": info["status"],
        }


async def availability(
    code: str,
    service: str,
    start: date | None,
    end: date | None,
    now: datetime,
    *,
    locale: str = "zh-Hans",
) -> dict[str, Any]:
    """Per local day: a status and the slots with what each still has room for."""
    office = await office_by_code(code)
    if not service.isprintable():
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    tz = office.tz
    today = now.astimezone(tz).date()
    last = last_bookable_day(now, tz, office.booking_days_ahead, office.opens_at)
    start, end = _range(today, start, end, last)
    offered = (
        await OfficeService.select()
        .where((OfficeService.office == office.id) & (OfficeService.service == service))
        .first()
    )
    if offered is None:
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    slots = (
        await Slot.select()
        .where(
            (Slot.office == office.id)
            & (Slot.service == service)
            & (Slot.day >= start)
            & (Slot.day <= end)
        )
        .order_by(Slot.start_at)
    )
    # The day's count is the sum over its slots of every service (issue 16).
    taken: dict[date, int] = {}
    for r in await Slot.select(Slot.day, Slot.booked).where(
        (Slot.office == office.id) & (Slot.day >= start) & (Slot.day <= end)
    ):
        taken[r["day"]] = taken.get(r["day"], 0) + r["booked"]
    day_left = {
        r["day"]: r["capacity"] - taken.get(r["day"], 0)
        for r in await OfficeDay.select().where(
            (OfficeDay.office == office.id) & (OfficeDay.day >= start) & (OfficeDay.day <= end)
        )
    }
    hall_left = {
        r["window_start"]: r["capacity"] - r["people"]
        for r in await OnsiteWindow.select().where(
            (OnsiteWindow.office == office.id)
            & (
                OnsiteWindow.window_start
                >= datetime.combine(start, time(0), tz) - timedelta(hours=1)
            )
            & (OnsiteWindow.window_start <= datetime.combine(end, time(23, 59), tz))
        )
    }
    notes = await _day_notes(office.id, service, start, end)
    calendar = await holiday_calendar.cached()
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for s in slots:
        if s["start_at"] <= now:
            continue
        # One time-zone conversion per slot: the local start gives the shown time and
        # the on-site window (an aware local hour equals the UTC key it stands for).
        local = s["start_at"].astimezone(tz)
        ends = s["end_at"].astimezone(tz)
        window = local.replace(minute=0, second=0, microsecond=0)
        # What a couple can actually get: the tightest of the three caps.
        cap = s["reduced_capacity"] if s["reduced_capacity"] is not None else s["capacity"]
        room = min(
            0 if s["blocked"] else cap - s["booked"],
            day_left.get(s["day"], 0),
            hall_left.get(window, 0) // 2,
        )
        by_day[s["day"]].append(
            {
                "id": s["id"],
                "start": f"{local.hour:02d}:{local.minute:02d}",
                "end": f"{ends.hour:02d}:{ends.minute:02d}",
                "capacity": s["capacity"],
                "remaining": max(room, 0),
            }
        )
    days = []
    day = start
    while day <= end:
        day_slots = by_day.get(day, [])
        status: str = day_status(
            day,
            today=today,
            last_bookable=last,
            has_slots=bool(day_slots),
            remaining_seats=sum(s["remaining"] for s in day_slots),
            day_remaining=day_left.get(day, 0),
        )
        note, reason = notes.get(day, (None, {}))
        if note is not None and status in ("open", "full", "closed"):
            status = note if note == "blackout" or status != "closed" else status
        why = (reason.get(locale) or reason.get("zh-Hans")) if note else None
        reasons = {k: v for k, v in reason.items() if v} if note else {}
        if status == "closed" and not why:  # a holiday says which (the notices in force)
            why = holiday_calendar.reason(calendar, day, locale) or None
            if why:
                reasons = {loc: holiday_calendar.reason(calendar, day, loc) for loc in LOCALES}
        days.append(
            {
                "date": day.isoformat(),
                "status": status,
                "reason": why,
                # Every language's reason: a page picks its own (the API keeps ``reason``).
                "reasons": reasons,
                "slots": day_slots if status in ("open", "full", "discouraged") else [],
            }
        )
        day += timedelta(days=1)
    await _mark_lottery_days(office, service, days, locale)  # status "lottery" (issue 7)
    return {
        "office": office_view(office),
        "service": service,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": days,
    }
