"""Slots: generated for the rolling booking window, and read back as availability."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from scheduler.db import seats
from scheduler.db.appointments import OfficeView, office_view
from scheduler.db.engine import write_transaction
from scheduler.db.records import OfficeRecord, office_of
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


def plan_office(
    office: OfficeRecord,
    services: list[dict[str, Any]],
    now: datetime,
    calendar: WorkCalendar,
) -> tuple[list[Slot], list[OfficeDay], list[OnsiteWindow]]:
    """Rows one office needs for its window under ``calendar`` (the notices in force,
    scheduler/usecases/calendar/holidays.py), counters at their default 0. Pure: the
    caller inserts them through scheduler/db/seats.py."""
    tz = office.tz
    slots: list[Slot] = []
    open_days: set[date] = set()
    windows: set[datetime] = set()
    for day in generation_days(now, tz, office.booking_days_ahead, office.opens_at):
        for svc in services:
            intervals = opening_intervals(svc["weekly_hours"], day, calendar)
            for start, end in slot_starts(day, intervals, svc["slot_minutes"], tz):
                slots.append(
                    Slot(
                        office=office.id,
                        service=svc["service"],
                        day=day,
                        start_at=start,
                        end_at=end,
                        capacity=svc["slot_cap"],
                    )
                )
                open_days.add(day)
                windows.add(onsite_window_start(start, tz))
    days = [OfficeDay(office=office.id, day=d, capacity=office.day_cap) for d in sorted(open_days)]
    hall = [
        OnsiteWindow(office=office.id, window_start=w, capacity=office.onsite_cap)
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
    for office in map(office_of, offices):
        slots, days, hall = plan_office(office, by_office[office.id], now, calendar)
        # A day that has slots of a service keeps them: after a change of hours or
        # slot length, booked days stay as they were (scheduler/usecases/offices/offices.py).
        have = await generated_days(office.id, min((s.day for s in slots), default=None))
        slots = [s for s in slots if (s.service, s.day) not in have]
        planned += len(slots)
        for rows in (slots, days, hall):
            for i in range(0, len(rows), _CHUNK):
                async with write_transaction():
                    await seats.add_rows(rows[i : i + _CHUNK])
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


class OfferedService(TypedDict):
    service: str
    slot_minutes: int
    suspended: bool  # inactive, or a suspension covers today
    suspension: dict[str, Any] | None  # the current or next one (offices.suspensions)


class OfficeListing(OfficeView):
    """An active office in the list couples choose from, with what it offers."""

    region: str
    services: list[OfferedService]


async def list_offices() -> list[OfficeListing]:
    offices = await Office.select().where(Office.active.eq(True)).order_by(Office.code)
    services = await OfficeService.select().order_by(OfficeService.id)
    suspended = await active_by_service(utcnow())
    by_office: dict[int, list[OfferedService]] = defaultdict(list)
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
        OfficeListing(**office_view(office), region=office.region, services=by_office[office.id])
        for office in map(office_of, offices)
    ]


async def office_by_code(code: str) -> OfficeRecord:
    """An active office by its code (any case), else ``not-found``."""
    if not code.isprintable():  # no such code; PostgreSQL would refuse a NUL in the query
        raise DomainError("not-found")
    office = (
        await Office.select().where((Office.code == code.upper()) & Office.active.eq(True)).first()
    )
    if office is None:
        raise DomainError("not-found")
    return office_of(office)


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


_OFFICE_OFFERING = (
    "SELECT o.*, (SELECT COUNT(*) FROM office_service os"
    " WHERE os.office = o.id AND os.service = {}) AS offered"
    " FROM office o WHERE o.code = {} AND o.active = {}"
)
# Each slot with what its day has left (a day without slots is "closed" whatever
# its counter says, so the join loses nothing). The day's count is the sum over its
# slots of every service: office_day.booked is not kept on a day whose slot caps
# keep its cap (issue 16, scheduler/db/seats.py).
_SLOTS = (
    "SELECT s.id, s.day, s.start_at, s.end_at, s.capacity, s.reduced_capacity, s.booked,"
    " s.blocked, d.capacity - b.booked AS day_room FROM slot s"
    " LEFT JOIN office_day d ON d.office = s.office AND d.day = s.day"
    " LEFT JOIN (SELECT day, SUM(booked) AS booked FROM slot"
    " WHERE office = {} AND day >= {} AND day <= {} GROUP BY day) b ON b.day = s.day"
    " WHERE s.office = {} AND s.service = {} AND s.day >= {} AND s.day <= {}"
    " ORDER BY s.start_at"
)
_WINDOWS = (
    "SELECT window_start, capacity - people AS room FROM onsite_window"
    " WHERE office = {} AND window_start >= {} AND window_start <= {}"
)


def _day_offsets(tz: ZoneInfo, start: date, end: date) -> dict[date, int]:
    """Per local day, its UTC offset in seconds when one offset holds the whole day
    (no clock change in it): a slot's local time is then plain arithmetic. Days with
    a change are missing and their slots take the time-zone conversion."""
    out: dict[date, int] = {}
    day = start
    midnight = datetime.combine(day, time(0), tz)
    while day <= end:
        following = datetime.combine(day + timedelta(days=1), time(0), tz)
        offset, after = midnight.utcoffset(), following.utcoffset()
        if offset is not None and offset == after:
            out[day] = int(offset.total_seconds())
        day, midnight = day + timedelta(days=1), following
    return out


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
    """Per local day: a status and the slots with what each still has room for.

    Five plain statements (office with "service offered", slots with their day's
    counter, on-site windows, blackouts, lottery dates), no Piccolo query building, and
    nothing recomputed per slot but integer arithmetic: the local clock of each
    day is worked out once (issue 16, docs/performance.md "Availability")."""
    if not code.isprintable():  # no such code; PostgreSQL would refuse a NUL in the query
        raise DomainError("not-found")
    # A NUL would fail the query; an unprintable service is refused below, after
    # the office (the order the answers always had).
    rows = await Office.raw(
        _OFFICE_OFFERING, service if service.isprintable() else "", code.upper(), True
    )
    if not rows:
        raise DomainError("not-found")
    office, offered = office_of(rows[0]), rows[0]["offered"]
    if not service.isprintable():
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    tz = office.tz
    today = now.astimezone(tz).date()
    last = last_bookable_day(now, tz, office.booking_days_ahead, office.opens_at)
    start, end = _range(today, start, end, last)
    if not offered:
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    office_id = office.id
    slots = await Slot.raw(_SLOTS, office_id, start, end, office_id, service, start, end)
    day_left = {s["day"]: s["day_room"] or 0 for s in slots}
    # On-site windows by their UTC start in whole seconds (what a slot's arithmetic gives).
    hall_left = {
        int(r["window_start"].timestamp()): r["room"]
        for r in await OnsiteWindow.raw(
            _WINDOWS,
            office_id,
            datetime.combine(start, time(0), tz) - timedelta(hours=1),
            datetime.combine(end, time(23, 59), tz),
        )
    }
    notes = await day_notes(office_id, service, start, end)
    calendar = await holiday_calendar.cached()
    offsets = _day_offsets(tz, start, end)
    now_ts = now.timestamp()
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for s in slots:
        begins = s["start_at"].timestamp()
        if begins <= now_ts:
            continue
        offset = offsets.get(s["day"])
        if offset is None:  # a clock change that day: convert this slot itself
            local, ends = s["start_at"].astimezone(tz), s["end_at"].astimezone(tz)
            window = int(local.replace(minute=0, second=0, microsecond=0).timestamp())
            shown, until = local.hour * 60 + local.minute, ends.hour * 60 + ends.minute
        else:
            clock = int(begins) + offset
            window = clock - clock % 3600 - offset  # the local clock hour, back in UTC
            shown = clock // 60 % 1440
            until = (int(s["end_at"].timestamp()) + offset) // 60 % 1440
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
                "start": f"{shown // 60:02d}:{shown % 60:02d}",
                "end": f"{until // 60:02d}:{until % 60:02d}",
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
