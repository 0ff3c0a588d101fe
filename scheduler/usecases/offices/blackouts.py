"""Blackouts: declare (or preview) and lift. What couples see of them (the days they
close and why) is the calendar's read side, scheduler/usecases/calendar/closures.py.

A declaration takes effect in its own transaction: the slots it covers are
marked blocked (or given a reduced cap) there, and every booking's conditional
UPDATE checks that mark, so from the commit on no booking lands inside it —
including one racing the declaration. A ``closed`` blackout also creates the
reschedule run that moves the couples already booked (scheduler/usecases/offices/reschedule.py).
"""

from __future__ import annotations

import hmac
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit, seats
from scheduler.db.appointments import ACTIVE_STATUSES
from scheduler.db.blackout_tables import Blackout, BlackoutOffice, RescheduleRun
from scheduler.db.engine import write_transaction
from scheduler.db.tables import Appointment, Office, OutboxMessage
from scheduler.domain.blackouts import Rule, problems, slot_state
from scheduler.domain.services import SERVICES
from scheduler.domain.sms import CountryRule, contains_url, count_segments
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import keyed_hash
from scheduler.notify.texts import render_for
from scheduler.settings import Settings
from scheduler.usecases.calendar.closures import rule_of
from scheduler.usecases.offices import capacity_excess
from scheduler.usecases.offices.reschedule import (
    SERVICES_ALL,
    covered_slots,
    earliest_move_day,
    plan_run,
    region_neighbours,
)
from scheduler.usecases.offices.reschedule_apply import Context
from scheduler.usecases.policy import policies

# How long a preview's token lets its declaration through.
PREVIEW_TOKEN_TTL = timedelta(minutes=15)
# A preview lists at most this many placements (the figures count all of them).
PLACEMENTS_SHOWN = 500


@dataclass(frozen=True)
class Declaration:
    kind: str
    start_date: date
    end_date: date
    offices: list[str] | None = None  # codes; None with all_offices or region
    all_offices: bool = False
    region: str | None = None
    start_time: time | None = None
    end_time: time | None = None
    services: list[str] = field(default_factory=list)
    reason: dict[str, str] = field(default_factory=dict)
    cap_percent: int = 50
    allow_other_office: bool = False

    @property
    def rule(self) -> Rule:
        return Rule(
            self.kind,
            self.start_date,
            self.end_date,
            self.start_time,
            self.end_time,
            frozenset(self.services),
            self.cap_percent,
        )


async def _offices(decl: Declaration, scope: frozenset[int] | None) -> list[dict[str, Any]]:
    """The offices a declaration names, all of them within the actor's scope."""
    query = Office.select().where(Office.active.eq(True))
    if decl.all_offices:
        rows = await query
    elif decl.region:
        rows = await query.where(Office.region == decl.region)
    else:
        codes = sorted({c.strip().upper() for c in decl.offices or []})
        rows = await query.where(Office.code.is_in(codes or [""]))
        if len(rows) != len(codes) or not codes:
            raise DomainError("invalid-input", field="offices", reason="unknown-office")
    if not rows:
        raise DomainError("invalid-input", field="offices", reason="unknown-office")
    if scope is not None and any(r["id"] not in scope for r in rows):
        raise DomainError("not-found")
    return rows


def _check(decl: Declaration, offices: list[dict[str, Any]], now: datetime) -> None:
    today = min(now.astimezone(ZoneInfo(o["timezone"])).date() for o in offices)
    unknown = [s for s in decl.services if s not in SERVICES]
    if unknown:
        raise DomainError("invalid-input", field="services", reason="service-unknown")
    if not (decl.reason.get("zh-Hans") or "").strip():
        raise DomainError("invalid-input", field="reason", reason="reason-required")
    if any(contains_url(str(text or "")) for text in decl.reason.values()):
        # The reason is texted to couples; +86 carriers block links (issue 13.3).
        raise DomainError("invalid-input", field="reason", reason="reason-url")
    found = problems(decl.rule, today)
    if found:
        field_name, reason = found[0]
        raise DomainError("invalid-input", field=field_name, reason=reason)


def _clock(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value else None


async def _duplicate(decl: Declaration, office_ids: list[int]) -> bool:
    """An active blackout identical in kind, dates, hours, services and offices."""
    same = (
        await Blackout.select(Blackout.id, Blackout.services)
        .where(
            Blackout.lifted_at.is_null()
            & (Blackout.kind == decl.kind)
            & (Blackout.start_date == decl.start_date)
            & (Blackout.end_date == decl.end_date)
        )
        .output(load_json=True)
    )
    for row in same:
        offices = await BlackoutOffice.select(BlackoutOffice.office).where(
            BlackoutOffice.blackout == row["id"]
        )
        hours = (
            await Blackout.select(Blackout.start_time, Blackout.end_time)
            .where(Blackout.id == row["id"])
            .first()
        )
        if (
            sorted(o["office"] for o in offices) == sorted(office_ids)
            and sorted(row["services"] or []) == sorted(decl.services)
            and hours == {"start_time": _clock(decl.start_time), "end_time": _clock(decl.end_time)}
        ):
            return True
    return False


async def refresh_slots(slots: list[dict[str, Any]]) -> None:
    """Recompute blocked / reduced capacity of these slots from every active blackout."""
    if not slots:
        return
    office_ids = sorted({s["office"] for s in slots})
    first, last = min(s["day"] for s in slots), max(s["day"] for s in slots)
    active = (
        await Blackout.select()
        .where(
            Blackout.lifted_at.is_null()
            & (Blackout.start_date <= last)
            & (Blackout.end_date >= first)
        )
        .output(load_json=True)
    )
    links = await BlackoutOffice.select().where(
        BlackoutOffice.blackout.is_in([b["id"] for b in active] or [-1])
        & BlackoutOffice.office.is_in(office_ids)
    )
    offices_of: dict[int, set[int]] = defaultdict(set)
    for link in links:
        offices_of[link["blackout"]].add(link["office"])
    zones = {
        o["id"]: ZoneInfo(o["timezone"]) for o in await Office.select(Office.id, Office.timezone)
    }
    rules = [(rule_of(b), offices_of[b["id"]]) for b in active]
    groups: dict[tuple[bool, int | None], list[int]] = defaultdict(list)
    for s in slots:
        tz = zones[s["office"]]
        start, end = s["start_at"].astimezone(tz).time(), s["end_at"].astimezone(tz).time()
        covering = [
            r
            for r, offices in rules
            if s["office"] in offices and r.covers(s["service"], s["day"], start, end)
        ]
        groups[slot_state(covering, s["capacity"])].append(s["id"])
    await seats.mark_slots(groups)


async def _affected(slot_ids: list[int]) -> list[dict[str, Any]]:
    return (
        await Appointment.select(
            Appointment.id,
            Appointment.office,
            Appointment.service,
            Appointment.people,
            Appointment.locale,
            Appointment.slot,
            Appointment.slot.day,
            Appointment.slot.start_at,
        )
        .where(
            Appointment.slot.is_in(slot_ids or [-1])
            & Appointment.status.is_in(list(ACTIVE_STATUSES))
        )
        .order_by(Appointment.created_at)
    )


async def preview(
    decl: Declaration, offices: list[dict[str, Any]], now: datetime, settings: Settings
) -> dict[str, Any]:
    """What the declaration would do; changes nothing. The placements come from the
    run's own planner (scheduler/usecases/offices/reschedule.py ``plan_run``) with the run's
    context:
    the same order, the same free seats and the covered slots excluded, so what the
    admin confirms is what the run applies (unless bookings change in between)."""
    office_ids = [o["id"] for o in offices]
    covered = await covered_slots(decl.rule, office_ids)
    all_offices = await Office.select(Office.id, Office.code, Office.timezone, Office.active)
    codes = {o["id"]: o["code"] for o in all_offices}
    mainland = (await policies.sms_terms(settings)).rule_for("+8613800000000")
    zones = {o["id"]: ZoneInfo(o["timezone"]) for o in all_offices if o["active"]}
    ctx = Context(
        0,  # no run yet: nothing is "already handled"
        {
            "allow_other_office": decl.allow_other_office,
            "services": decl.services,
            "reason": decl.reason,
        },
        office_ids,
        [s["id"] for s in covered] if decl.kind == "closed" else [],
        zones,
        await region_neighbours(),
    )
    moves = (
        await plan_run(
            ctx, set(decl.services) or SERVICES_ALL, earliest_move_day(now, zones.values())
        )
        if ctx.covered
        else []
    )
    per_group: Counter[tuple[str, str, str]] = Counter(
        (
            codes[m.appointment["office"]],
            m.appointment["service"],
            m.appointment["slot.day"].isoformat(),
        )
        for m in moves
    )
    placements, segments = [], 0
    for m in moves:
        a, to = m.appointment, m.to
        old = a["slot.start_at"].astimezone(zones.get(a["office"], UTC))
        placements.append(
            {
                "reference": a["reference"],
                "from_office": codes[a["office"]],
                "from_date": old.date().isoformat(),
                "from_time": old.strftime("%H:%M"),
                "to_office": codes[to.office_id] if to else None,
                "to_date": to.day.isoformat() if to else None,
                "to_time": to.start.strftime("%H:%M") if to else None,
            }
        )
        template = "rescheduled" if to else "needs_rebooking"
        segments += 2 * _segments(template, a["locale"], decl.reason, mainland)
    unplaced = sum(1 for m in moves if m.to is None)
    return {
        "offices": sorted(o["code"] for o in offices),
        "kind": decl.kind,
        "start_date": decl.start_date.isoformat(),
        "end_date": decl.end_date.isoformat(),
        "start_time": _clock(decl.start_time),
        "end_time": _clock(decl.end_time),
        "services": sorted(decl.services),
        "affected": len(moves),
        "by_office_service_day": [
            {"office": o, "service": s, "date": d, "appointments": n}
            for (o, s, d), n in sorted(per_group.items())
        ],
        "slots_covered": len(covered),
        "placeable": len(moves) - unplaced,
        "unplaceable": unplaced,
        "sms": 2 * len(moves),
        "sms_segments": segments,
        "placements": placements[:PLACEMENTS_SHOWN],
    }


@cache
def _sample_segments(template: str, locale: str, reason: str, rule: CountryRule) -> int:
    sample = {
        "reference": "GZTH-0000-0000",
        "old": "02-02 09:00",
        "new": "02-03 09:00",
        "office": "",
        "reason": reason,
    }
    return count_segments(render_for(template, locale, sample, rule)).segments


def _segments(template: str, locale: str, reason: dict[str, str], rule: CountryRule) -> int:
    """Segments of one notice to a mainland number (the costliest case, under its
    country ``rule``) with this reason."""
    reason_text = reason.get(locale) or reason.get("zh-Hans", "")
    return _sample_segments(template, locale, reason_text, rule)


def _digest(decl: Declaration, offices: list[dict[str, Any]]) -> str:
    """Everything a preview shows, resolved (the office codes, not "all"): a token
    minted for it fits no other declaration, nor "all" once an office is added."""
    canonical = {
        "offices": sorted(o["code"] for o in offices),
        "kind": decl.kind,
        "dates": [decl.start_date.isoformat(), decl.end_date.isoformat()],
        "hours": [_clock(decl.start_time), _clock(decl.end_time)],
        "services": sorted(decl.services),
        "reason": {k: v for k, v in sorted(decl.reason.items()) if v},
        "cap_percent": decl.cap_percent,
        "allow_other_office": decl.allow_other_office,
    }
    return json.dumps(canonical, sort_keys=True, ensure_ascii=False)


def _mac(secret_key: str, digest: str, actor: str, expires: int) -> str:
    return keyed_hash(secret_key, "blackout-preview", f"{actor}|{expires}|{digest}")


def preview_token_for(
    decl: Declaration, offices: list[dict[str, Any]], actor: str, now: datetime, secret_key: str
) -> str:
    """Signed, not stored: the expiry and an HMAC over the actor and the declaration."""
    expires = int((now + PREVIEW_TOKEN_TTL).timestamp())
    return f"{expires}.{_mac(secret_key, _digest(decl, offices), actor, expires)}"


def check_preview_token(
    token: str | None,
    decl: Declaration,
    offices: list[dict[str, Any]],
    actor: str,
    now: datetime,
    secret_key: str,
) -> None:
    if not token:
        raise DomainError("preview-required", reason="offices", offices=len(offices))
    raw_expires, _, mac = token.partition(".")
    if not raw_expires.isdigit():
        raise DomainError("preview-mismatch")
    expected = _mac(secret_key, _digest(decl, offices), actor, int(raw_expires))
    if not hmac.compare_digest(mac, expected):
        raise DomainError("preview-mismatch")
    if int(raw_expires) < now.timestamp():
        raise DomainError(
            "preview-expired", reason="minutes", minutes=PREVIEW_TOKEN_TTL.seconds // 60
        )


async def scope_offices(decl: Declaration, scope: frozenset[int] | None) -> list[str]:
    """The codes of the offices a declaration would cover (for the page's typed count)."""
    return sorted(o["code"] for o in await _offices(decl, scope))


async def write(
    decl: Declaration, office_ids: list[int], *, by: str, now: datetime
) -> tuple[int, list[dict[str, Any]]]:
    """THE writer of a blackout (declared here, or a service suspension,
    scheduler/usecases/offices/suspensions.py): its row, its offices and the marks of
    the slots it covers. Inside the caller's write transaction; returns the id and
    the covered slots."""
    rows = await Blackout.insert(
        Blackout(
            kind=decl.kind,
            start_date=decl.start_date,
            end_date=decl.end_date,
            start_time=_clock(decl.start_time),
            end_time=_clock(decl.end_time),
            services=sorted(decl.services),
            reason=decl.reason,
            cap_percent=decl.cap_percent,
            allow_other_office=decl.allow_other_office,
            created_by=by[:64],
            created_at=now,
        )
    ).returning(Blackout.id)
    blackout_id: int = rows[0]["id"]
    await BlackoutOffice.insert(
        *[BlackoutOffice(blackout=blackout_id, office=o) for o in office_ids]
    )
    covered = await covered_slots(decl.rule, office_ids)
    await refresh_slots(covered)
    return blackout_id, covered


async def write_lift(blackout_id: int, office_ids: list[int], *, by: str, now: datetime) -> bool:
    """Lift a blackout (False if it was lifted already) and recompute the marks of
    the slots it covered from what remains. Inside the caller's write transaction."""
    lifted = (
        await Blackout.update({Blackout.lifted_at: now, Blackout.lifted_by: by[:64]})
        .where((Blackout.id == blackout_id) & Blackout.lifted_at.is_null())
        .returning(Blackout.id)
    )
    row = await Blackout.select().where(Blackout.id == blackout_id).output(load_json=True).first()
    assert row is not None
    await refresh_slots(await covered_slots(rule_of(row), office_ids))
    return bool(lifted)


async def declare(
    decl: Declaration,
    *,
    now: datetime,
    actor: audit.Actor,
    scope: frozenset[int] | None,
    dry_run: bool,
    settings: Settings,
    preview_token: str | None = None,
    preview_required_over: int | None = None,
) -> dict[str, Any]:
    """Preview (``dry_run``: the figures and a preview token) or declare.

    ``preview_required_over``: a declaration over more offices than this needs the
    token of its own preview (the API: 1, so a script cannot close several offices
    nobody previewed; the pages: 0). None for the service's own callers (a holiday
    calendar job): they act on data, not on someone's click. A token given is
    always checked."""
    offices = await _offices(decl, scope)
    _check(decl, offices, now)
    office_ids = [o["id"] for o in offices]
    if await _duplicate(decl, office_ids):
        raise DomainError("blackout-exists")
    if dry_run:
        return {
            "dry_run": True,
            "preview": await preview(decl, offices, now, settings),
            "preview_token": preview_token_for(
                decl, offices, actor.username, now, settings.secret_key
            ),
            "preview_expires_at": (now + PREVIEW_TOKEN_TTL).isoformat(),
        }
    needs = preview_required_over is not None and len(offices) > preview_required_over
    if preview_token or needs:
        check_preview_token(preview_token, decl, offices, actor.username, now, settings.secret_key)
    async with write_transaction():
        blackout_id, covered = await write(decl, office_ids, by=actor.username, now=now)
        run_id = None
        if decl.kind == "closed":
            total = len(await _affected([s["id"] for s in covered]))
            runs = await RescheduleRun.insert(
                RescheduleRun(blackout=blackout_id, status="pending", total=total, created_at=now)
            ).returning(RescheduleRun.id)
            run_id = runs[0]["id"]
        await audit.record(
            actor,
            "blackout.declare",
            office_id=office_ids[0] if len(office_ids) == 1 else None,
            object_type="blackout",
            object_id=blackout_id,
            after={
                "kind": decl.kind,
                "from": decl.start_date.isoformat(),
                "to": decl.end_date.isoformat(),
                "offices": [o["code"] for o in offices],
                "services": decl.services,
            },
            now=now,
        )
    return {
        "dry_run": False,
        "blackout": await view(blackout_id),
        "run": await progress(run_id) if run_id else None,
    }


async def _check_scope(blackout_id: int, scope: frozenset[int] | None) -> None:
    """Admins see the blackouts that touch any of their offices; others are 404."""
    if scope is None:
        return
    offices = await BlackoutOffice.select(BlackoutOffice.office).where(
        BlackoutOffice.blackout == blackout_id
    )
    if not any(o["office"] in scope for o in offices):
        raise DomainError("not-found")


async def view(blackout_id: int, scope: frozenset[int] | None = None) -> dict[str, Any]:
    row = await Blackout.select().where(Blackout.id == blackout_id).output(load_json=True).first()
    if row is None:
        raise DomainError("not-found")
    await _check_scope(blackout_id, scope)
    codes = await BlackoutOffice.select(BlackoutOffice.office.code).where(
        BlackoutOffice.blackout == blackout_id
    )
    return {
        "id": row["id"],
        "kind": row["kind"],
        "start_date": row["start_date"].isoformat(),
        "end_date": row["end_date"].isoformat(),
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "services": row["services"] or [],
        "reason": row["reason"] or {},
        "offices": sorted(c["office.code"] for c in codes),
        "cap_percent": row["cap_percent"],
        "allow_other_office": row["allow_other_office"],
        "lifted": row["lifted_at"] is not None,
    }


async def progress(run_id: int, scope: frozenset[int] | None = None) -> dict[str, Any]:
    run = await RescheduleRun.select().where(RescheduleRun.id == run_id).first()
    if run is None:
        raise DomainError("not-found")
    if run["blackout"] is None:  # a lowered cap's excess move: scoped by its items' office
        if scope is not None and not await capacity_excess.run_offices(run_id) & scope:
            raise DomainError("not-found")
    else:
        await _check_scope(run["blackout"], scope)
    statuses = await OutboxMessage.select(OutboxMessage.status).where(
        OutboxMessage.key.like(f"appointment:%:%:{run_id}:%")
        & OutboxMessage.template.is_in(["rescheduled", "needs_rebooking"])
    )
    sms = Counter(r["status"] for r in statuses)
    return {
        "id": run["id"],
        "blackout": run["blackout"],
        "status": run["status"],
        "total": run["total"],
        "moved": run["moved"],
        "needs_rebooking": run["needs_rebooking"],
        "notified": run["notified"],
        "sms": {
            "queued": sum(sms.values()),
            "sent": sms["sent"],
            "delivered": sms["delivered"],
            "failed": sms["failed"] + sms["undelivered"] + sms["dead"],
        },
    }


async def lift(
    blackout_id: int, *, now: datetime, actor: audit.Actor, scope: frozenset[int] | None
) -> dict[str, Any]:
    """Reopen the blackout's slots; couples already moved stay where they are."""
    offices = [
        r["office"]
        for r in await BlackoutOffice.select(BlackoutOffice.office).where(
            BlackoutOffice.blackout == blackout_id
        )
    ]
    if not offices or (scope is not None and any(o not in scope for o in offices)):
        raise DomainError("not-found")
    async with write_transaction():
        if not await write_lift(blackout_id, offices, by=actor.username, now=now):
            raise DomainError("not-pending")
        await audit.record(
            actor, "blackout.lift", object_type="blackout", object_id=blackout_id, now=now
        )
    return await view(blackout_id)
