"""Service suspensions (issue 6): a service stops taking bookings at one or more
offices for a date range (ceremonies and counselling during an epidemic).

A suspension is enforced by a ``no_new_bookings`` blackout limited to the
service, created in the same transaction: its slot marks make every booking
racing the declaration either commit first or fail, availability shows the
days with the reason, and lifting reopens them. What is specific here: couples
already booked inside keep their appointment and are texted once (key per
suspension and partner), their manage page explains the suspension and offers
to cancel or move; new bookings are answered ``409 service-suspended``. Those
reads (the suspension in force, why a slot is blocked) are the calendar's read
side, scheduler/usecases/calendar/closures.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit
from scheduler.db.appointments import ACTIVE_STATUSES, load
from scheduler.db.blackout_tables import BlackoutOffice
from scheduler.db.engine import write_transaction
from scheduler.db.office_tables import ServiceSuspension
from scheduler.db.tables import Appointment, Office
from scheduler.domain.blackouts import Rule, problems
from scheduler.domain.services import SERVICES
from scheduler.domain.sms import contains_url
from scheduler.kernel.errors import DomainError
from scheduler.settings import Settings
from scheduler.usecases.couples.texting import notify_couple
from scheduler.usecases.offices import blackouts

TEMPLATE = "service_suspended"
LISTED = 50


@dataclass(frozen=True)
class Suspension:
    offices: list[str]  # office codes
    service: str
    start_date: date
    end_date: date
    reason: dict[str, str] = field(default_factory=dict)  # per locale

    @property
    def declaration(self) -> blackouts.Declaration:
        """The blackout that enforces it: no new bookings of the service."""
        return blackouts.Declaration(
            kind="no_new_bookings",
            start_date=self.start_date,
            end_date=self.end_date,
            services=[self.service],
            reason=self.reason,
        )

    @property
    def rule(self) -> Rule:
        return self.declaration.rule


async def _offices(codes: list[str], scope: frozenset[int] | None) -> list[dict[str, Any]]:
    wanted = sorted({c.strip().upper() for c in codes if c.strip()})
    rows = await Office.select().where(Office.code.is_in(wanted or [""]))
    if not wanted or len(rows) != len(wanted):
        raise DomainError("invalid-input", field="offices", reason="unknown-office")
    if scope is not None and any(r["id"] not in scope for r in rows):
        raise DomainError("not-found")
    return list(rows)


def _check(s: Suspension, offices: list[dict[str, Any]], now: datetime) -> None:
    if s.service not in SERVICES:
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    if not (s.reason.get("zh-Hans") or "").strip():
        raise DomainError("invalid-input", field="reason", reason="reason-required")
    if any(contains_url(str(text or "")) for text in s.reason.values()):
        # The reason is texted to couples; +86 carriers block links (issue 13.3).
        raise DomainError("invalid-input", field="reason", reason="reason-url")
    today = min(now.astimezone(ZoneInfo(o["timezone"])).date() for o in offices)
    found = problems(s.rule, today)
    if found:
        field_name, reason = found[0]
        raise DomainError("invalid-input", field=field_name, reason=reason)


async def suspend(
    s: Suspension,
    *,
    now: datetime,
    actor: audit.Actor,
    scope: frozenset[int] | None,
    settings: Settings,
) -> dict[str, Any]:
    """Suspend the service; text every couple already booked inside, once."""
    offices = await _offices(s.offices, scope)
    _check(s, offices, now)
    office_ids = [o["id"] for o in offices]
    async with write_transaction():
        # A suspension is a blackout limited to the service, written by the one writer.
        blackout_id, covered = await blackouts.write(
            s.declaration, office_ids, by=actor.username, now=now
        )
        inserted = await ServiceSuspension.insert(
            ServiceSuspension(
                blackout=blackout_id,
                service=s.service,
                start_date=s.start_date,
                end_date=s.end_date,
                reason=s.reason,
                created_by=actor.username[:64],
                created_at=now,
            )
        ).returning(ServiceSuspension.id)
        suspension_id = inserted[0]["id"]
        notified = await _notify(suspension_id, [c["id"] for c in covered], s.reason, now, settings)
        await ServiceSuspension.update({ServiceSuspension.notified: notified}).where(
            ServiceSuspension.id == suspension_id
        )
        await audit.record(
            actor,
            "service.suspend",
            office_id=office_ids[0] if len(office_ids) == 1 else None,
            object_type="service_suspension",
            object_id=suspension_id,
            after={
                "offices": sorted(o["code"] for o in offices),
                "service": s.service,
                "from": s.start_date.isoformat(),
                "to": s.end_date.isoformat(),
                "reason": s.reason,
                "notified": notified,
            },
            now=now,
        )
    return await view(suspension_id)


async def _notify(
    suspension_id: int,
    slot_ids: list[int],
    reason: dict[str, str],
    now: datetime,
    settings: Settings,
) -> int:
    """One SMS per partner of each active appointment in the covered slots."""
    booked = await Appointment.select(Appointment.reference).where(
        Appointment.slot.is_in(slot_ids or [-1]) & Appointment.status.is_in(list(ACTIVE_STATUSES))
    )
    for row in booked:
        loaded = await load(row["reference"])
        assert loaded is not None
        locale = loaded.appointment.locale
        await notify_couple(
            loaded,
            TEMPLATE,
            now,
            settings,
            suffix=f":{suspension_id}",
            extra={"reason": reason.get(locale) or reason.get("zh-Hans", "")},
        )
    return len(booked)


async def lift(
    suspension_id: int, *, now: datetime, actor: audit.Actor, scope: frozenset[int] | None
) -> dict[str, Any]:
    """Reopen the service: the blackout's marks are recomputed from what remains."""
    row = await ServiceSuspension.select().where(ServiceSuspension.id == suspension_id).first()
    if row is None:
        raise DomainError("not-found")
    offices = await _office_ids(row["blackout"])
    if scope is not None and any(o not in scope for o in offices):
        raise DomainError("not-found")
    async with write_transaction():
        lifted = (
            await ServiceSuspension.update(
                {ServiceSuspension.lifted_at: now, ServiceSuspension.lifted_by: actor.username[:64]}
            )
            .where((ServiceSuspension.id == suspension_id) & ServiceSuspension.lifted_at.is_null())
            .returning(ServiceSuspension.id)
        )
        if not lifted:
            raise DomainError("not-pending")
        # Its blackout may have been lifted from the blackouts page already: the
        # suspension is lifted all the same.
        await blackouts.write_lift(row["blackout"], offices, by=actor.username, now=now)
        await audit.record(
            actor,
            "service.resume",
            office_id=offices[0] if len(offices) == 1 else None,
            object_type="service_suspension",
            object_id=suspension_id,
            before={"lifted": False},
            after={"lifted": True},
            now=now,
        )
    return await view(suspension_id)


async def _office_ids(blackout_id: int) -> list[int]:
    return [
        r["office"]
        for r in await BlackoutOffice.select(BlackoutOffice.office).where(
            BlackoutOffice.blackout == blackout_id
        )
    ]


async def view(suspension_id: int) -> dict[str, Any]:
    row = (
        await ServiceSuspension.select(
            *ServiceSuspension.all_columns(),
            ServiceSuspension.blackout.lifted_at.as_alias("blackout_lifted_at"),
        )
        .where(ServiceSuspension.id == suspension_id)
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise DomainError("not-found")
    codes = await BlackoutOffice.select(BlackoutOffice.office.code).where(
        BlackoutOffice.blackout == row["blackout"]
    )
    return {
        "id": row["id"],
        "service": row["service"],
        "offices": sorted(c["office.code"] for c in codes),
        "start_date": row["start_date"].isoformat(),
        "end_date": row["end_date"].isoformat(),
        "reason": row["reason"] or {},
        "notified": row["notified"],
        # Lifted here, or its blackout lifted from the blackouts page.
        "lifted": row["lifted_at"] is not None or row["blackout_lifted_at"] is not None,
    }


async def listed(scope: frozenset[int] | None) -> list[dict[str, Any]]:
    """Recent suspensions touching the actor's offices, newest first."""
    rows = (
        await ServiceSuspension.select(ServiceSuspension.id)
        .order_by(ServiceSuspension.id, ascending=False)
        .limit(LISTED)
    )
    out = []
    for r in rows:
        v = await view(r["id"])
        ids = await _office_ids_of_codes(v["offices"])
        if scope is None or set(ids) & scope:
            out.append(v | {"liftable": scope is None or set(ids) <= scope})
    return out


async def _office_ids_of_codes(codes: list[str]) -> list[int]:
    return [r["id"] for r in await Office.select(Office.id).where(Office.code.is_in(codes or [""]))]
