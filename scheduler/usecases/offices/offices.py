"""Offices admin use cases (issue 6): create and edit offices, their services and
weekly opening rules, and apply capacity changes to the slots already generated.
One transaction each, with its audit row (before and after).

Rules (docs/decisions.md, "Offices admin"):
- A cap (slot, office-day, on-site) applies to every future counter at once, but
  never below what is already booked there: such a change is refused with the
  numbers and nothing changes.
- New hours, slot length or time zone apply from tomorrow (local) on, to the days
  no appointment points into: those days' slots are rebuilt; booked days keep
  theirs. A longer booking window generates the new days at once.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit, seats
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.records import office_of
from scheduler.db.tables import Appointment, Office, OfficeService, OnsiteWindow, Slot
from scheduler.domain.calendar import onsite_window_start
from scheduler.domain.capacity_change import (
    OverCap,
    days_to_regenerate,
    first_regenerated_day,
    hours_problems,
    office_problems,
    over_cap,
    summary,
)
from scheduler.domain.services import SERVICES
from scheduler.kernel.errors import DomainError
from scheduler.notify.terms import SmsTerms
from scheduler.settings import Settings
from scheduler.usecases.calendar import holidays as holiday_calendar
from scheduler.usecases.calendar.slots import generated_days, plan_office
from scheduler.usecases.offices import seed
from scheduler.usecases.offices.blackouts import refresh_slots
from scheduler.usecases.offices.capacity_excess import move_excess
from scheduler.usecases.policy import policies

Scope = frozenset[int] | None  # None: every office (superadmin)

# Admins may also close an office (`active`); demo files only load open ones.
OFFICE_FIELDS = (*seed.OFFICE_FIELDS, "active")
SERVICE_FIELDS = ("slot_minutes", "slot_cap", "weekly_hours", "active")
# Changes that move slot times: the affected days are rebuilt.
RESHAPING = frozenset({"slot_minutes", "weekly_hours", "timezone"})
_CHUNK = 500
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{1,15}")


def _invalid(found: list[tuple[str, str]]) -> None:
    if found:
        field, reason = found[0]
        raise DomainError("invalid-input", field=field, reason=reason)


async def office_for(code: str, scope: Scope) -> dict[str, Any]:
    """The office of this code within the actor's scope (else not-found)."""
    if not code.isprintable():
        raise DomainError("not-found")
    office = await Office.select().where(Office.code == code.upper()).first()
    if office is None or (scope is not None and office["id"] not in scope):
        raise DomainError("not-found")
    return office


async def services_of(office_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await OfficeService.select()
        .where(OfficeService.office == office_id)
        .order_by(OfficeService.id)
        .output(load_json=True)
    )
    return rows


async def listed(scope: Scope) -> list[dict[str, Any]]:
    query = Office.select().order_by(Office.code)
    if scope is not None:
        query = query.where(Office.id.is_in(sorted(scope) or [-1]))
    return list(await query)


def view(office: dict[str, Any], services: list[dict[str, Any]]) -> dict[str, Any]:
    """The API body of an office with its services."""
    return {k: office[k] for k in ("code", *OFFICE_FIELDS)} | {
        "services": [{k: s[k] for k in ("service", *SERVICE_FIELDS)} for s in services]
    }


async def create_office(
    code: str, values: dict[str, Any], *, now: datetime, actor: audit.Actor, scope: Scope
) -> dict[str, Any]:
    """A new office (superadmins only: an admin's scope is the offices they have)."""
    if scope is not None:
        raise DomainError("forbidden")
    if not CODE.fullmatch(code):
        raise DomainError("invalid-input", field="code", reason="office-field")
    missing = [k for k in ("name_zh", "name_en") if not str(values.get(k, "")).strip()]
    _invalid([(k, "required") for k in missing] + office_problems(values))
    code = code.upper()
    async with write_transaction():
        try:
            rows = await Office.insert(Office(code=code, **values)).returning(Office.id)
        except Exception as exc:
            if is_unique_violation(exc):
                raise DomainError("invalid-input", field="code", reason="code-taken") from exc
            raise
        office_id = rows[0]["id"]
        await audit.record(
            actor,
            "office.create",
            office_id=office_id,
            object_type="office",
            object_id=code,
            after=values,
            now=now,
        )
    office = await office_for(code, None)
    return view(office, [])


def _changed(before: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in changes.items() if before.get(k) != v}


async def update_office(
    code: str, changes: dict[str, Any], *, now: datetime, actor: audit.Actor, scope: Scope
) -> dict[str, Any]:
    office = await office_for(code, scope)
    _invalid(office_problems(changes))
    diff = _changed(office, changes)
    if diff:
        async with write_transaction():
            await Office.update({getattr(Office, k): v for k, v in diff.items()}).where(
                Office.id == office["id"]
            )
            after = office | diff
            await _apply_office_caps(office, diff, now)
            services = [s for s in await services_of(office["id"]) if s["active"]]
            if after["active"]:  # the daily job generates for active offices only, too
                await regenerate(after, services, now, rebuild="timezone" in diff)
            await audit.record(
                actor,
                "office.update",
                office_id=office["id"],
                object_type="office",
                object_id=office["code"],
                before={k: office[k] for k in diff},
                after=diff,
                now=now,
            )
    return view(await office_for(code, scope), await services_of(office["id"]))


async def save_service(
    code: str,
    service: str,
    changes: dict[str, Any],
    *,
    now: datetime,
    actor: audit.Actor,
    scope: Scope,
    settings: Settings,
    excess: str = "refuse",
) -> dict[str, Any]:
    """Add a service to an office, or change its slot length, cap, hours or state.
    ``excess="move"``: a slot cap under a slot's bookings moves the couples over
    it (scheduler/usecases/offices/capacity_excess.py) instead of refusing the change."""
    office = await office_for(code, scope)
    if service not in SERVICES:
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    if "weekly_hours" in changes:
        _invalid(hours_problems(changes["weekly_hours"]))
    where = (OfficeService.office == office["id"]) & (OfficeService.service == service)
    moved: dict[str, Any] | None = None
    async with write_transaction():
        before = await OfficeService.select().where(where).output(load_json=True).first()
        if before is None:
            rows = await OfficeService.insert(
                OfficeService(office=office["id"], service=service, **changes)
            ).returning(OfficeService.id)
            diff = dict(changes)
            after = (
                await OfficeService.select()
                .where(OfficeService.id == rows[0]["id"])
                .output(load_json=True)
                .first()
            )
        else:
            diff = _changed(before, changes)
            after = before | diff
            if diff:
                await OfficeService.update(
                    {getattr(OfficeService, k): v for k, v in diff.items()}
                ).where(where)
                if "slot_cap" in diff:
                    moved = await _apply_slot_cap(
                        office,
                        service,
                        diff["slot_cap"],
                        now,
                        move=excess == "move",
                        terms=await policies.sms_terms(settings),
                    )
        assert after is not None
        if diff:
            if after["active"]:
                await regenerate(
                    office, [after], now, rebuild=bool(before and RESHAPING & diff.keys())
                )
            await audit.record(
                actor,
                "office.service.create" if before is None else "office.service.update",
                office_id=office["id"],
                object_type="office_service",
                object_id=f"{office['code']}:{service}",
                before={k: before[k] for k in diff} if before else None,
                after=diff | ({"moved": moved["moved"], "run": moved["run"]} if moved else {}),
                now=now,
            )
    return view(office, await services_of(office["id"])) | {"moved": moved}


def _refuse(found: list[OverCap], field: str) -> None:
    if found:
        raise DomainError(
            "cap-below-bookings",
            field=field,
            count=len(found),
            rows=summary(found),
            errors=[o.as_dict() for o in found],
        )


async def _apply_slot_cap(
    office: dict[str, Any], service: str, cap: int, now: datetime, *, move: bool, terms: SmsTerms
) -> dict[str, Any] | None:
    """Every future slot of the service takes the new cap, unless one already holds
    more: then the whole change is refused (the transaction rolls back).

    The check runs after the UPDATE: from then on the rows are this transaction's
    (PostgreSQL row locks; SQLite: one writer), so a booking racing the change is
    either counted here or meets the new cap."""
    where = (Slot.office == office["id"]) & (Slot.service == service) & (Slot.start_at > now)
    await seats.set_slot_capacity(where, cap)
    tz = ZoneInfo(office["timezone"])
    rows = await Slot.select(Slot.id, Slot.day, Slot.start_at, Slot.booked).where(
        where & (Slot.booked > cap)
    )
    moved = None
    if rows and move:
        moved = await move_excess(office, service, list(rows), cap, now, terms)
        rows = await Slot.select(Slot.id, Slot.day, Slot.start_at, Slot.booked).where(
            where & (Slot.booked > cap)
        )
    _refuse(
        over_cap(
            "slot",
            ((r["day"], f"{r['start_at'].astimezone(tz):%H:%M}", r["booked"]) for r in rows),
            cap,
        ),
        "slot_cap",
    )
    # Discouraged days keep a share of the capacity: recompute their reduced caps.
    await refresh_slots(
        list(await Slot.select().where(where & Slot.reduced_capacity.is_not_null()))
    )
    return moved


async def _apply_office_caps(office: dict[str, Any], diff: dict[str, Any], now: datetime) -> None:
    tz = ZoneInfo(office["timezone"])
    if "day_cap" in diff:
        cap = diff["day_cap"]
        first_day = now.astimezone(tz).date()
        await seats.set_day_capacity(office["id"], first_day, cap)
        # The true counts, the sums over the slots (office_day.booked is not kept on a
        # day whose slot caps keep its cap, issue 16), read after the change: the
        # day's rows are this transaction's from there on.
        booked = await seats.day_booked([office["id"]], first_day)
        over = sorted((day, n) for (_, day), n in booked.items() if n > cap)
        _refuse(over_cap("day", ((day, None, n) for day, n in over), cap), "day_cap")
    if "onsite_cap" in diff:
        cap = diff["onsite_cap"]
        first_window = onsite_window_start(now, tz)
        await seats.set_window_capacity(office["id"], first_window, cap)
        where = (OnsiteWindow.office == office["id"]) & (OnsiteWindow.window_start >= first_window)
        rows = await OnsiteWindow.select().where(where & (OnsiteWindow.people > cap))
        found = over_cap(
            "onsite",
            (
                (
                    r["window_start"].astimezone(tz).date(),
                    f"{r['window_start'].astimezone(tz):%H:%M}",
                    r["people"],
                )
                for r in rows
            ),
            cap,
        )
        _refuse(found, "onsite_cap")


async def _held_days(office_id: int, service: str, first: date) -> set[date]:
    rows = await Appointment.select(Appointment.slot.day).where(
        (Appointment.office == office_id)
        & (Appointment.service == service)
        & (Appointment.slot.day >= first)
    )
    return {r["slot.day"] for r in rows}


async def regenerate(
    office: dict[str, Any], services: list[dict[str, Any]], now: datetime, *, rebuild: bool
) -> int:
    """Generate the missing slots and counters of these services (idempotent: call it
    twice, nothing more). With ``rebuild``, first drop the slots of every day from
    tomorrow on that no appointment points into, so they are made again under the
    new rule. Returns the number of slots inserted."""
    tz = ZoneInfo(office["timezone"])
    if rebuild:
        first = first_regenerated_day(now, tz)
        for svc in services:
            where = (
                (Slot.office == office["id"])
                & (Slot.service == svc["service"])
                & (Slot.day >= first)
            )
            existing = {r["day"] for r in await Slot.select(Slot.day).where(where).distinct()}
            gone = days_to_regenerate(
                existing, await _held_days(office["id"], svc["service"], first)
            )
            if gone:
                await Slot.delete().where(where & Slot.day.is_in(gone))
    calendar = await holiday_calendar.current()
    slots, days, hall = plan_office(office_of(office), services, now, calendar)
    have = await generated_days(office["id"], min((s.day for s in slots), default=None))
    slots = [s for s in slots if (s.service, s.day) not in have]
    for rows in (slots, days, hall):
        for i in range(0, len(rows), _CHUNK):
            await seats.add_rows(rows[i : i + _CHUNK])
    if slots:
        # New slots inside an active blackout (or suspension) must carry its mark.
        await refresh_slots(
            list(
                await Slot.select().where(
                    (Slot.office == office["id"])
                    & Slot.service.is_in(sorted({s.service for s in slots}))
                    & Slot.day.is_in(sorted({s.day for s in slots}))
                )
            )
        )
    return len(slots)
