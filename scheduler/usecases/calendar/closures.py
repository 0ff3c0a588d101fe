"""Closures, the read side: which days a blackout or a suspension closes, and why.

Booking, availability, the waiting list and the manage page ask this module; the
declaring and lifting (and the slot marks they set) stay with the offices admin
(scheduler/usecases/offices/blackouts.py, suspensions.py), which imports it, never
the other way round.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.appointments import ACTIVE_STATUSES
from scheduler.db.blackout_tables import Blackout, BlackoutOffice
from scheduler.db.office_tables import ServiceSuspension
from scheduler.domain.blackouts import Rule
from scheduler.kernel.errors import DomainError


def rule_of(row: dict[str, Any]) -> Rule:
    def clock(raw: str | None) -> time | None:
        return time.fromisoformat(raw) if raw else None

    return Rule(
        kind=row["kind"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        start_time=clock(row["start_time"]),
        end_time=clock(row["end_time"]),
        services=frozenset(row["services"] or []),
        cap_percent=row["cap_percent"],
    )


async def day_notes(
    office_id: int, service: str, start: date, end: date
) -> dict[date, tuple[str, dict[str, str]]]:
    """Per day: ("blackout" or "discouraged", reason) of whole-day blackouts that apply."""
    # One plain statement: availability asks this on every uncached request, and two
    # Piccolo selects cost more to build than to run (docs/performance.md).
    active = [
        b
        | {
            "services": json.loads(b["services"] or "[]"),
            "reason": json.loads(b["reason"] or "{}"),
        }
        for b in await Blackout.raw(
            "SELECT b.id, b.kind, b.start_date, b.end_date, b.start_time, b.end_time,"
            " b.services, b.reason, b.cap_percent FROM blackout b"
            " JOIN blackout_office bo ON bo.blackout = b.id"
            " WHERE bo.office = {} AND b.lifted_at IS NULL AND b.start_date <= {}"
            " AND b.end_date >= {} ORDER BY b.id",
            office_id,
            end,
            start,
        )
    ]
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


def _in_force() -> Any:
    """Not lifted, and its blackout not lifted either (the blackouts page lists it too)."""
    return ServiceSuspension.lifted_at.is_null() & ServiceSuspension.blackout.lifted_at.is_null()


async def active_by_service(now: datetime) -> dict[tuple[int, str], dict[str, Any]]:
    """(office id, service) -> the current or next unlifted suspension that has not
    ended: {from, to, reason, now} where ``now`` says it covers today (local)."""
    rows = (
        await ServiceSuspension.select()
        .where(_in_force())
        .order_by(ServiceSuspension.start_date)
        .output(load_json=True)
    )
    if not rows:
        return {}
    links = await BlackoutOffice.select(
        BlackoutOffice.blackout, BlackoutOffice.office, BlackoutOffice.office.timezone
    ).where(BlackoutOffice.blackout.is_in([r["blackout"] for r in rows]))
    offices: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for link in links:
        offices[link["blackout"]].append((link["office"], link["office.timezone"]))
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for r in rows:
        for office_id, zone in offices[r["blackout"]]:
            today = now.astimezone(ZoneInfo(zone)).date()
            key = (office_id, r["service"])
            if r["end_date"] < today or key in found:
                continue
            found[key] = {
                "from": r["start_date"].isoformat(),
                "to": r["end_date"].isoformat(),
                "reason": r["reason"] or {},
                "now": r["start_date"] <= today,
            }
    return found


async def covering(office_code: str, service: str, day: date) -> dict[str, str] | None:
    """The reason (per locale) of an unlifted suspension covering this day, if any."""
    rows = (
        await ServiceSuspension.select(ServiceSuspension.blackout, ServiceSuspension.reason)
        .where(
            _in_force()
            & (ServiceSuspension.service == service)
            & (ServiceSuspension.start_date <= day)
            & (ServiceSuspension.end_date >= day)
        )
        .output(load_json=True)
    )
    for r in rows:
        codes = await BlackoutOffice.select(BlackoutOffice.office.code).where(
            BlackoutOffice.blackout == r["blackout"]
        )
        if office_code in {c["office.code"] for c in codes}:
            reason: dict[str, str] = r["reason"] or {}
            return reason
    return None


async def annotate(appt: dict[str, Any]) -> dict[str, Any]:
    """An appointment view with ``suspended`` (the reason per locale, or None), for
    the manage page: the couple may cancel or choose another date."""
    day = date.fromisoformat(appt["slot"]["date"])
    reason = None
    if appt.get("status") in ACTIVE_STATUSES:
        reason = await covering(appt["office"]["code"], appt["service"], day)
    return appt | {"suspended": reason}


async def blocked_error(office_code: str, service: str, day: date) -> DomainError:
    """Why a blocked slot takes no booking: a suspension of its service, or a blackout."""
    if await covering(office_code, service, day) is not None:
        return DomainError("service-suspended")
    return DomainError("date-closed", reason="blackout")
