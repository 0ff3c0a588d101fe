"""Lottery mode for a date at chosen offices (issue 7): declare, cancel, view; and
what the rest of the service asks of it (is this a lottery date? does the lottery
still want a freed seat?).

The seed is drawn and its SHA-256 stored (and published) when the lottery is
declared, which must be before its window opens; the seed itself stays secret
until the draw (scheduler/usecases/lottery/draw.py).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.lottery_tables import Lottery, LotteryApplication, LotteryOffice
from scheduler.db.tables import Office, OfficeService, Slot
from scheduler.domain import lottery as rules
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate

# Day statuses a lottery replaces; a closed day, a blackout or a past day stays so.
LOTTERY_OVERRIDES = ("open", "full", "discouraged", "not_yet_open")


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


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value else None


async def _office_rows(lottery_id: int, cancelled: bool) -> list[dict[str, Any]]:
    if cancelled:
        return []
    rows = await LotteryOffice.select(
        LotteryOffice.office.id,
        LotteryOffice.office.code,
        LotteryOffice.office.name_zh,
        LotteryOffice.office.name_en,
        LotteryOffice.office.timezone,
        LotteryOffice.office.designated,
    ).where(LotteryOffice.lottery == lottery_id)
    return sorted(
        (
            {
                "id": r["office.id"],
                "code": r["office.code"],
                "name_zh": r["office.name_zh"],
                "name_en": r["office.name_en"],
                "timezone": r["office.timezone"],
                "designated": r["office.designated"],
            }
            for r in rows
        ),
        key=lambda o: o["code"],
    )


async def load(lottery_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row = await Lottery.select().where(Lottery.id == lottery_id).output(load_json=True).first()
    if row is None:
        raise DomainError("not-found")
    return row, await _office_rows(lottery_id, row["status"] == "cancelled")


def public_view(row: dict[str, Any], offices: list[dict[str, Any]]) -> dict[str, Any]:
    """What anyone may see: the window, the seed's hash; after the draw the seed
    and the draw order, so that anyone can re-run it."""
    tz = ZoneInfo(offices[0]["timezone"] if offices else "Asia/Shanghai")
    drawn = row["status"] == "drawn"
    return {
        "id": row["id"],
        "date": row["day"].isoformat(),
        "service": row["service"],
        "status": row["status"],
        "offices": [o["code"] for o in offices],
        "office_names": {o["code"]: {"zh": o["name_zh"], "en": o["name_en"]} for o in offices},
        "timezone": str(tz),
        "opens_at": _iso(row["opens_at"], tz),
        "closes_at": _iso(row["closes_at"], tz),
        "draw_at": _iso(row["closes_at"], tz),
        "confirm_hours": row["confirm_hours"],
        "seed_sha256": row["seed_sha256"],
        "seed": row["seed"] if drawn else None,
        "drawn_at": _iso(row["drawn_at"], tz),
        "draw_order": list(row["draw_order"] or []) if drawn else [],
    }


async def view_of(lottery_id: int) -> dict[str, Any]:
    return public_view(*await load(lottery_id))


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


async def upcoming(now: datetime) -> list[dict[str, Any]]:
    """Lotteries whose date is still ahead, for the public list."""
    rows = await (
        Lottery.select(Lottery.id)
        .where((Lottery.status != "cancelled") & (Lottery.day >= now.date()))
        .order_by(Lottery.day)
    )
    return [await view_of(r["id"]) for r in rows]


# -- what other modules ask ------------------------------------------------------


async def refuse_lottery_date(slot: dict[str, Any]) -> None:
    """First come, first served does not apply on a lottery date (booking, move)."""
    office = slot["office"]
    office_id = office["id"] if isinstance(office, dict) else office
    row = (
        await LotteryOffice.select(LotteryOffice.id)
        .where(
            (LotteryOffice.office == office_id)
            & (LotteryOffice.day == slot["day"])
            & (LotteryOffice.service == slot["service"])
        )
        .first()
    )
    if row is not None:
        raise DomainError("lottery-date")


async def reserved_days(
    office_ids: list[int], services: Collection[str], first: date
) -> set[tuple[int, str, date]]:
    """(office, service, day) of lottery dates from ``first`` on: a reschedule or a
    cap's excess move must not place a couple there (seats go by draw)."""
    rows = await LotteryOffice.select(
        LotteryOffice.office, LotteryOffice.service, LotteryOffice.day
    ).where(
        LotteryOffice.office.is_in(office_ids or [-1])
        & LotteryOffice.service.is_in(sorted(services) or [""])
        & (LotteryOffice.day >= first)
    )
    return {(r["office"], r["service"], r["day"]) for r in rows}


async def day_windows(office_id: int, service: str, first: date, last: date) -> dict[date, dict]:
    """Lottery dates of one office and service in a range, with their windows."""
    # One plain statement: availability asks this on every uncached request, and a
    # Piccolo select through the foreign key costs more to build than to run.
    rows = await LotteryOffice.raw(
        'SELECT lo.day, l.id AS "lottery.id", l.opens_at AS "lottery.opens_at",'
        ' l.closes_at AS "lottery.closes_at", l.status AS "lottery.status"'
        " FROM lottery_office lo JOIN lottery l ON l.id = lo.lottery"
        " WHERE lo.office = {} AND lo.service = {} AND lo.day >= {} AND lo.day <= {}",
        office_id,
        service,
        first,
        last,
    )
    return {
        r["day"]: {
            "id": r["lottery.id"],
            "opens_at": r["lottery.opens_at"],
            "closes_at": r["lottery.closes_at"],
            "status": r["lottery.status"],
        }
        for r in rows
    }


async def mark_lottery_days(
    office: dict[str, Any], service: str, days: list[dict[str, Any]], locale: str
) -> None:
    """Availability: a lottery date shows status ``lottery``, its window, no slots."""
    if not days:
        return
    tz = ZoneInfo(office["timezone"])
    found = await day_windows(
        office["id"],
        service,
        date.fromisoformat(days[0]["date"]),
        date.fromisoformat(days[-1]["date"]),
    )
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


async def reserved_slots(office_id: int, service: str, day: date, now: datetime) -> frozenset[int]:
    """Slots of one office, service and day whose freed seats belong to a lottery,
    not to the waiting list (scheduler/usecases/waitlist/offers.py leaves these alone):

    - every slot of a lottery date before its draw (the draw seats what is free);
    - after the draw, until the date begins, the slots someone still waiting in
      the draw order would take (office and start time, or the office any time):
      ``scheduler.usecases.lottery.draw.pass_on`` gives them out in draw order.

    Once the order is exhausted for a slot (or the date has begun) the set no longer
    holds it, and the lottery job hands the day to the waiting list. One indexed
    query when the date is no lottery date.
    """
    link = await (
        LotteryOffice.select(LotteryOffice.lottery.id, LotteryOffice.lottery.status)
        .where(
            (LotteryOffice.office == office_id)
            & (LotteryOffice.day == day)
            & (LotteryOffice.service == service)
        )
        .first()
    )
    if link is None or link["lottery.status"] not in ("scheduled", "drawn"):
        return frozenset()
    slots = await Slot.select(Slot.id, Slot.start_at, Slot.office.timezone).where(
        (Slot.office == office_id) & (Slot.day == day) & (Slot.service == service)
    )
    if link["lottery.status"] == "scheduled" or not slots:
        return frozenset(s["id"] for s in slots)
    tz = ZoneInfo(slots[0]["office.timezone"])
    if not rules.passing_on(now, day, tz):
        return frozenset()
    waiting = await (
        LotteryApplication.select(LotteryApplication.preferences)
        .where(
            (LotteryApplication.lottery == link["lottery.id"])
            & (LotteryApplication.status == "waiting")
        )
        .output(load_json=True)
    )
    wanted = {p["start"] for r in waiting for p in r["preferences"] if p["office"] == office_id}
    if None in wanted:  # someone takes this office at any time
        return frozenset(s["id"] for s in slots)
    return frozenset(
        s["id"] for s in slots if s["start_at"].astimezone(tz).strftime("%H:%M") in wanted
    )
