"""Lottery dates, the read side (issue 7): a lottery's public view, and what the rest
of the service asks of it (is this a lottery date? does the lottery still want a
freed seat?). Declaring and cancelling lottery mode is scheduler/usecases/lottery/dates.py.

After the draw the public view shows the seed and the order, so that anyone can
re-run the draw (scheduler/usecases/lottery/draw.py).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.lottery_tables import Lottery, LotteryApplication, LotteryOffice
from scheduler.db.records import OfficeRecord, SlotRecord
from scheduler.db.tables import Slot
from scheduler.domain import lottery as rules
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate

# Day statuses a lottery replaces; a closed day, a blackout or a past day stays so.
LOTTERY_OVERRIDES = ("open", "full", "discouraged", "not_yet_open")


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


async def upcoming(now: datetime) -> list[dict[str, Any]]:
    """Lotteries whose date is still ahead, for the public list."""
    rows = await (
        Lottery.select(Lottery.id)
        .where((Lottery.status != "cancelled") & (Lottery.day >= now.date()))
        .order_by(Lottery.day)
    )
    return [await view_of(r["id"]) for r in rows]


# -- what other modules ask ------------------------------------------------------


async def refuse_lottery_date(slot: SlotRecord) -> None:
    """First come, first served does not apply on a lottery date (booking, move)."""
    row = (
        await LotteryOffice.select(LotteryOffice.id)
        .where(
            (LotteryOffice.office == slot.office.id)
            & (LotteryOffice.day == slot.day)
            & (LotteryOffice.service == slot.service)
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
    office: OfficeRecord, service: str, days: list[dict[str, Any]], locale: str
) -> None:
    """Availability: a lottery date shows status ``lottery``, its window, no slots."""
    if not days:
        return
    tz = office.tz
    found = await day_windows(
        office.id,
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
