"""Lottery mode for a date at chosen offices (issue 7): declared and cancelled by
admins, and the admin's view with the applications per status. What a lottery date
means for booking, availability and the waiting list is the calendar's read side
(scheduler/usecases/calendar/lottery_days.py).

The seed is drawn and its SHA-256 stored (and published) when the lottery is
declared, which must be before its window opens; the seed itself stays secret
until the draw (scheduler/usecases/lottery/draw.py).
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.lottery_tables import Lottery, LotteryApplication, LotteryOffice
from scheduler.db.tables import Office, OfficeService
from scheduler.domain import lottery as rules
from scheduler.kernel.errors import DomainError
from scheduler.usecases.calendar.lottery_days import load, public_view, view_of


@dataclass(frozen=True)
class LotteryInput:
    day: date
    offices: list[str]
    service: str = "marriage"
    opens_days_before: int = 14
    opens_at: time = time(9, 0)
    closes_days_before: int = 7
    closes_at: time = time(9, 0)
    confirm_hours: int = 48


async def _offices(codes: list[str], scope: frozenset[int] | None) -> list[dict[str, Any]]:
    wanted = sorted({c.strip().upper() for c in codes if c.strip()})
    rows = await Office.select().where(Office.active.eq(True) & Office.code.is_in(wanted or [""]))
    if not wanted or len(rows) != len(wanted):
        raise DomainError("invalid-input", field="offices", reason="unknown-office")
    if scope is not None and any(r["id"] not in scope for r in rows):
        raise DomainError("not-found")
    if len({r["timezone"] for r in rows}) != 1:
        raise DomainError("invalid-input", field="offices", reason="lottery-timezones")
    return sorted(rows, key=lambda r: r["code"])


async def create(
    data: LotteryInput,
    *,
    now: datetime,
    actor: audit.Actor,
    scope: frozenset[int] | None,
    ip: str | None = None,
) -> dict[str, Any]:
    offices = await _offices(data.offices, scope)
    ids = [o["id"] for o in offices]
    offered = await OfficeService.select(OfficeService.office).where(
        OfficeService.office.is_in(ids) & (OfficeService.service == data.service)
    )
    if {r["office"] for r in offered} != set(ids):
        raise DomainError("invalid-input", field="service", reason="service-unknown")
    tz = ZoneInfo(offices[0]["timezone"])
    win = rules.window(
        data.day,
        tz,
        opens_days_before=data.opens_days_before,
        opens_at=data.opens_at,
        closes_days_before=data.closes_days_before,
        closes_at=data.closes_at,
    )
    found = rules.window_problems(data.day, tz, win, now, data.confirm_hours)
    if found:
        raise DomainError("invalid-input", field=found[0][0], reason=found[0][1])
    seed = secrets.token_hex(rules.SEED_BYTES)
    try:
        async with write_transaction():
            rows = await Lottery.insert(
                Lottery(
                    day=data.day,
                    service=data.service,
                    opens_at=win.opens_at,
                    closes_at=win.closes_at,
                    confirm_hours=data.confirm_hours,
                    status="scheduled",
                    seed_sha256=rules.commitment(seed),
                    seed=seed,
                    created_by=actor.username,
                    created_at=now,
                )
            ).returning(Lottery.id)
            lottery_id = rows[0]["id"]
            await LotteryOffice.insert(
                *[
                    LotteryOffice(lottery=lottery_id, office=i, day=data.day, service=data.service)
                    for i in ids
                ]
            )
            view = await view_of(lottery_id)
            await audit.record(
                actor,
                "lottery.create",
                office_id=ids[0] if len(ids) == 1 else None,
                object_type="lottery",
                object_id=lottery_id,
                after={k: view[k] for k in ("date", "service", "offices", "opens_at", "closes_at")},
                ip=ip,
                now=now,
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise DomainError("lottery-exists") from exc
        raise
    return view


async def cancel(
    lottery_id: int,
    *,
    now: datetime,
    actor: audit.Actor,
    scope: frozenset[int] | None,
    ip: str | None = None,
) -> dict[str, Any]:
    """Lift lottery mode before the window opens (nobody has applied yet): the date
    goes back to first come, first served."""
    view = await admin_view(lottery_id, scope, whole=True)
    async with write_transaction():
        done = (
            await Lottery.update({Lottery.status: "cancelled", Lottery.cancelled_at: now})
            .where(
                (Lottery.id == lottery_id)
                & (Lottery.status == "scheduled")
                & (Lottery.opens_at > now)
            )
            .returning(Lottery.id)
        )
        if not done:
            raise DomainError("lottery-closed")
        await LotteryOffice.delete().where(LotteryOffice.lottery == lottery_id)
        await audit.record(
            actor,
            "lottery.cancel",
            object_type="lottery",
            object_id=lottery_id,
            before={"status": view["status"], "offices": view["offices"]},
            after={"status": "cancelled"},
            ip=ip,
            now=now,
        )
    return await view_of(lottery_id)


async def admin_view(
    lottery_id: int, scope: frozenset[int] | None, *, whole: bool = False
) -> dict[str, Any]:
    """The public view and the applications per status. Visible to staff of any of
    its offices; ``whole``: only to staff of all of them (to change it)."""
    row, offices = await load(lottery_id)
    if scope is not None:
        mine = {o["id"] for o in offices} & scope
        if not mine or (whole and len(mine) != len(offices)):
            raise DomainError("not-found")
    counts = Counter(
        r["status"]
        for r in await LotteryApplication.select(LotteryApplication.status).where(
            LotteryApplication.lottery == lottery_id
        )
    )
    return public_view(row, offices) | {
        "applications": dict(sorted(counts.items())),
        "created_by": row["created_by"],
    }


async def listing(scope: frozenset[int] | None, *, limit: int = 50) -> list[dict[str, Any]]:
    """Recent lotteries touching the scope (all for a superadmin), newest date first."""
    rows = await Lottery.select(Lottery.id).order_by(Lottery.day, ascending=False).limit(limit)
    found = []
    for r in rows:
        try:
            found.append(await admin_view(r["id"], scope))
        except DomainError:
            continue
    return found
