"""Loading a year's State Council holiday notice (superadmins), and what it changes.

A notice is checked (scheduler/domain/holidays.py), compared with the calendar in
force, stored as a new version with its audit row, and then applied from
tomorrow on:

- days it newly closes that already have slots are closed like a blackout: one
  ``closed`` blackout per run of consecutive days, over all offices, declared
  through ``blackouts.declare`` (slots blocked in its transaction, the reschedule
  run moves the couples and texts each partner once, the reason names the holiday);
- days it newly opens (a make-up working day, a day the statutory fallback had
  closed) get their slots from ``slots.generate_slots``.

Loading is two steps (preview, then load with the preview's count of affected
appointments), so it is never one click and never moves more couples than the
admin saw.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit
from scheduler.db.appointments import ACTIVE_STATUSES
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.holiday_tables import HolidayNotice
from scheduler.db.tables import Appointment, Office, Slot
from scheduler.domain.holidays import Notice, NoticeError, WorkCalendar, parse_notice
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES
from scheduler.settings import Settings
from scheduler.usecases.calendar import holidays as holiday_calendar
from scheduler.usecases.calendar.slots import generate_slots
from scheduler.usecases.offices import blackouts


def _parse(raw: Any, now: datetime) -> Notice:
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    try:
        return parse_notice(raw, holiday_calendar.statutory_rules(), today)
    except NoticeError as exc:
        raise DomainError(
            "invalid-input", field=exc.field, reason=exc.reason, **exc.params
        ) from exc


async def _first_day(now: datetime) -> date:
    """Tomorrow in the earliest office zone: today's desk is not rearranged."""
    zones = {o["timezone"] for o in await Office.select(Office.timezone)} or {"Asia/Shanghai"}
    return min(now.astimezone(ZoneInfo(z)).date() for z in zones) + timedelta(days=1)


def _changes(
    old: WorkCalendar, new: WorkCalendar, first: date, last: date
) -> tuple[list[date], list[date]]:
    """(days that close, days that open) from ``first`` to ``last``."""
    closing, opening = [], []
    day = first
    while day <= last:
        before, after = old.kind(day), new.kind(day)
        if after == "holiday" and before != "holiday":
            closing.append(day)
        elif (before == "holiday" and after != "holiday") or (
            after == "makeup_workday" and before != "makeup_workday"
        ):
            opening.append(day)
        day += timedelta(days=1)
    return closing, opening


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges."""
    ranges = []
    for _, group in groupby(enumerate(days), key=lambda item: item[1].toordinal() - item[0]):
        run = [d for _, d in group]
        ranges.append((run[0], run[-1]))
    return ranges


def reason_of(calendar: WorkCalendar, day: date) -> dict[str, str]:
    """What couples are told, per locale: the holiday by name."""
    return {loc: holiday_calendar.reason(calendar, day, loc) for loc in LOCALES}


async def preview(raw: Any, *, now: datetime) -> dict[str, Any]:
    """What loading this notice would change; changes nothing."""
    notice = _parse(raw, now)
    old = await holiday_calendar.current()
    new = WorkCalendar(old.rules, {**old.notices, notice.year: notice})
    first = await _first_day(now)
    last = max(date(notice.year + 1, 1, 31), first)
    closing, opening = _changes(old, new, first, last)
    slot_rows = await Slot.select(Slot.id, Slot.office.code, Slot.day).where(
        Slot.day.is_in(closing or [date.min])
    )
    affected = await Appointment.select(
        Appointment.id, Appointment.office.code, Appointment.slot.day
    ).where(
        Appointment.slot.is_in([s["id"] for s in slot_rows] or [-1])
        & Appointment.status.is_in(list(ACTIVE_STATUSES))
    )
    per_day: dict[tuple[str, str], int] = {}
    for a in affected:
        key = (a["office.code"], a["slot.day"].isoformat())
        per_day[key] = per_day.get(key, 0) + 1
    with_slots = sorted({s["day"] for s in slot_rows})
    version = await _next_version(notice.year)
    return {
        "notice": notice.as_data(),
        "version": version,
        "replaces": version > 1 or notice.year in holiday_calendar.shipped_notices(),
        "closing": [
            {"from": a.isoformat(), "to": b.isoformat(), "holidays": list(new.holiday_names(a))}
            for a, b in _runs(closing)
        ],
        "opening": [d.isoformat() for d in opening],
        "closing_with_slots": [
            {"from": a.isoformat(), "to": b.isoformat()} for a, b in _runs(with_slots)
        ],
        "affected": len(affected),
        "by_office_day": [
            {"office": o, "date": d, "appointments": n} for (o, d), n in sorted(per_day.items())
        ],
    }


async def _next_version(year: int) -> int:
    rows = await HolidayNotice.select(HolidayNotice.version).where(HolidayNotice.year == year)
    return max((r["version"] for r in rows), default=0) + 1


async def load(
    raw: Any,
    *,
    confirm_affected: int | None,
    actor: audit.Actor,
    now: datetime,
    settings: Settings,
    ip: str | None = None,
) -> dict[str, Any]:
    """Store the notice and apply it; ``confirm_affected`` must be the preview's count."""
    seen = await preview(raw, now=now)
    if confirm_affected is None or confirm_affected != seen["affected"]:
        raise DomainError("holiday-preview-stale", affected=seen["affected"])
    data = seen["notice"]
    notice = _parse(data, now)
    try:
        async with write_transaction():
            rows = await HolidayNotice.insert(
                HolidayNotice(
                    year=notice.year,
                    version=seen["version"],
                    notice=data,
                    title=notice.title,
                    document_number=notice.document_number,
                    published_on=notice.published_on,
                    url=notice.url,
                    loaded_by=actor.username[:64],
                    loaded_at=now,
                )
            ).returning(HolidayNotice.id)
            await audit.record(
                actor,
                "holiday_notice.load",
                object_type="holiday_notice",
                object_id=rows[0]["id"],
                after={
                    "year": notice.year,
                    "version": seen["version"],
                    "title": notice.title,
                    "document_number": notice.document_number,
                    "closing": seen["closing"],
                    "opening": seen["opening"],
                    "affected": seen["affected"],
                },
                ip=ip,
                now=now,
            )
    except Exception as exc:
        if is_unique_violation(exc):  # another superadmin loaded this year meanwhile
            raise DomainError("holiday-preview-stale", affected=seen["affected"]) from exc
        raise
    holiday_calendar.forget()
    return {
        "year": notice.year,
        "version": seen["version"],
        "blackouts": await _close(seen, actor, now, settings),
        "slots_added": await generate_slots(now),
        "affected": seen["affected"],
    }


async def _close(
    seen: dict[str, Any], actor: audit.Actor, now: datetime, settings: Settings
) -> list[dict[str, Any]]:
    """One closed blackout per run of newly closed days that have slots."""
    calendar = await holiday_calendar.current()
    declared = []
    for span in seen["closing_with_slots"]:
        first, last = date.fromisoformat(span["from"]), date.fromisoformat(span["to"])
        decl = blackouts.Declaration(
            kind="closed",
            start_date=first,
            end_date=last,
            all_offices=True,
            reason=reason_of(calendar, first),
        )
        try:
            result = await blackouts.declare(
                decl, now=now, actor=actor, scope=None, dry_run=False, settings=settings
            )
        except DomainError as exc:
            if exc.slug != "blackout-exists":  # the same block, closed before: nothing to do
                raise
            continue
        declared.append(
            {
                "blackout": result["blackout"]["id"],
                "run": result["run"]["id"] if result["run"] else None,
                "from": span["from"],
                "to": span["to"],
            }
        )
    return declared


async def overview(now: datetime) -> dict[str, Any]:
    """Per year: the notice in force and where it comes from; the years missing."""
    calendar = await holiday_calendar.current()
    loaded = {r["year"]: r for r in await holiday_calendar.loaded_rows()}
    years = []
    for year, notice in sorted(calendar.notices.items()):
        row = loaded.get(year)
        years.append(
            {
                "year": year,
                "title": notice.title,
                "document_number": notice.document_number,
                "published_on": notice.published_on.isoformat(),
                "url": notice.url,
                "source": "loaded" if row else "shipped",
                "version": row["version"] if row else 0,
                "loaded_by": row["loaded_by"] if row else None,
                "loaded_at": row["loaded_at"].isoformat() if row else None,
                "blocks": notice.as_data()["blocks"],
            }
        )
    return {
        "notices": years,
        "missing": await holiday_calendar.missing_years(now, calendar),
        "statutory": {
            "title": calendar.rules.title,
            "source": calendar.rules.source,
            "effective_from": calendar.rules.effective_from.isoformat(),
        },
    }
