"""Slots: generated for the rolling booking window, and read back as availability."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.appointments import office_view
from scheduler.db.engine import write_transaction
from scheduler.db.replica import replica_read
from scheduler.db.tables import Office, OfficeDay, OfficeService, OnsiteWindow, Slot
from scheduler.domain.bounds import date_in_reach
from scheduler.domain.calendar import (
    day_status,
    generation_days,
    last_bookable_day,
    onsite_window_start,
    opening_intervals,
    slot_starts,
)
from scheduler.domain.holidays import WorkCalendar
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES
from scheduler.usecases.calendar import holidays as holiday_calendar
from scheduler.usecases.calendar.closures import active_by_service, day_notes
from scheduler.usecases.calendar.lottery_days import mark_lottery_days

MAX_RANGE_DAYS = 62
_CHUNK = 500


def _opens_at(office: dict[str, Any]) -> time:
    return time.fromisoformat(office["booking_opens_at"])


def plan_office(
    office: dict[str, Any],
    services: list[dict[str, Any]],
    now: datetime,
    calendar: WorkCalendar,
) -> tuple[list[Slot], list[OfficeDay], list[OnsiteWindow]]:
    """Rows one office needs for its window under ``calendar`` (the notices in force,
    scheduler/usecases/calendar/holidays.py). Pure: the caller inserts them."""
    tz = ZoneInfo(office["timezone"])
    slots: list[Slot] = []
    open_days: set[date] = set()
    windows: set[datetime] = set()
    for day in generation_days(now, tz, office["booking_days_ahead"], _opens_at(office)):
        for svc in services:
            intervals = opening_intervals(svc["weekly_hours"], day, calendar)
            for start, end in slot_starts(day, intervals, svc["slot_minutes"], tz):
                slots.append(
                    Slot(
                        office=office["id"],
                        service=svc["service"],
                        day=day,
                        start_at=start,
                        end_at=end,
                        capacity=svc["slot_cap"],
                        booked=0,
                    )
                )
                open_days.add(day)
                windows.add(onsite_window_start(start, tz))
    days = [
        OfficeDay(office=office["id"], day=d, capacity=office["day_cap"], booked=0)
        for d in sorted(open_days)
    ]
    hall = [
        OnsiteWindow(office=office["id"], window_start=w, capacity=office["onsite_cap"], people=0)
        for w in sorted(windows)
    ]
    return slots, days, hall


async def generate_slots(now: datetime) -> int:
    """Create missing slots, day and on-site counters for every active office.
    Idempotent: existing rows (and their booked counters) are left alone."""
    offices = await Office.select().where(Office.active.eq(True))
    services = (
        await OfficeService.select().where(OfficeService.active.eq(True)).output(load_json=True)
    )
    by_office: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for svc in services:
        by_office[svc["office"]].append(svc)
    planned = 0
    calendar = await holiday_calendar.current()
    for office in offices:
        slots, days, hall = plan_office(office, by_office[office["id"]], now, calendar)
        # A day that has slots of a service keeps them: after a change of hours or
        # slot length, booked days stay as they were (scheduler/usecases/offices/offices.py).
        have = await generated_days(office["id"], min((s.day for s in slots), default=None))
        slots = [s for s in slots if (s.service, s.day) not in have]
        planned += len(slots)
        for table, rows in ((Slot, slots), (OfficeDay, days), (OnsiteWindow, hall)):
            for i in range(0, len(rows), _CHUNK):
                async with write_transaction():
                    await table.insert(*rows[i : i + _CHUNK]).on_conflict(action="DO NOTHING")
    return planned


async def generated_days(office_id: int, first: date | None) -> set[tuple[str, date]]:
    """(service, day) pairs of the office that have slots, from ``first`` on."""
    if first is None:
        return set()
    rows = (
        await Slot.select(Slot.service, Slot.day)
        .where((Slot.office == office_id) & (Slot.day >= first))
        .distinct()
    )
    return {(r["service"], r["day"]) for r in rows}


async def list_offices() -> list[dict[str, Any]]:
    offices = await Office.select().where(Office.active.eq(True)).order_by(Office.code)
    services = await OfficeService.select().order_by(OfficeService.id)
    suspended = await active_by_service(utcnow())
    by_office: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for svc in services:
        pause = suspended.get((svc["office"], svc["service"]))
        by_office[svc["office"]].append(
            {
                "service": svc["service"],
                "slot_minutes": svc["slot_minutes"],
                "suspended": not svc["active"] or bool(pause and pause["now"]),
                "suspension": pause,
            }
        )
    return [
        office_view(o) | {"region": o["region"], "services": by_office[o["id"]]} for o in offices
    ]


async def office_by_code(code: str) -> dict[str, Any]:
    if not code.isprintable():  # no such code; PostgreSQL would refuse a NUL in the query
        raise DomainError("not-found")
    office = (
        await Office.select().where((Office.code == code.upper()) & Office.active.eq(True)).first()
    )
    if office is None:
        raise DomainError("not-found")
    return office


def _range(today: date, start: date | None, end: date | None, last: date) -> tuple[date, date]:
    for name, given in (("from", start), ("to", end)):
        if given is not None and not date_in_reach(given, today):
            raise DomainError("invalid-input", field=name, reason="date-out-of-reach")
    start = start or today
    end = end or max(start, min(last, start + timedelta(days=MAX_RANGE_DAYS - 1)))
    if end < start:
        raise DomainError("invalid-input", field="to", reason="range-order")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise DomainError("invalid-input", field="to", reason="range-too-long", days=MAX_RANGE_DAYS)
    return start, end


@replica_read
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
    tz = ZoneInfo(office["timezone"])
    today = now.astimezone(tz).date()
    last = last_bookable_day(now, tz, office["booking_days_ahead"], _opens_at(office))
    start, end = _range(today, start, end, last)
    offered = (
        await OfficeService.select()
        .where((OfficeService.office == office["id"]) & (OfficeService.service == service))
        .first()
    )
    if offered is None:
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    slots = (
        await Slot.select()
        .where(
            (Slot.office == office["id"])
            & (Slot.service == service)
            & (Slot.day >= start)
            & (Slot.day <= end)
        )
        .order_by(Slot.start_at)
    )
    day_left = {
        r["day"]: r["capacity"] - r["booked"]
        for r in await OfficeDay.select().where(
            (OfficeDay.office == office["id"]) & (OfficeDay.day >= start) & (OfficeDay.day <= end)
        )
    }
    hall_left = {
        r["window_start"]: r["capacity"] - r["people"]
        for r in await OnsiteWindow.select().where(
            (OnsiteWindow.office == office["id"])
            & (
                OnsiteWindow.window_start
                >= datetime.combine(start, time(0), tz) - timedelta(hours=1)
            )
            & (OnsiteWindow.window_start <= datetime.combine(end, time(23, 59), tz))
        )
    }
    notes = await day_notes(office["id"], service, start, end)
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
    await mark_lottery_days(office, service, days, locale)  # status "lottery" (issue 7)
    return {
        "office": office_view(office),
        "service": service,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": days,
    }
