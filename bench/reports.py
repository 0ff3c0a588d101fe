"""Benchmark: every admin report, and the audit log page's query, over a year of history.

Seeds 3 offices × 366 past days (8 slots a day, ``--per-day`` appointments per office
and day in every status, queue tickets with their call events, two SMS per
appointment, and 60,000 audit entries), then times each report over the whole year
and all offices (the largest range the API accepts), and one audit page (an admin's
scope, then with an office and action filter). Target on the 2-core build machine:
every report and audit page under 2 s.

    .venv/bin/python bench/reports.py [--per-day 40] [--db postgres sqlite]

Each database runs in a child process: settings (and Piccolo's engine) are read
once per process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _db import run_child

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OFFICES = ("GZ-TH", "SZ-FT", "DG-SL")
DAYS = 366
AUDIT_ROWS = 60_000
TARGET_S = 2.0
UNUSED_HASH = "0" * 64  # no couple manages these bookings
STATUSES = ("completed",) * 5 + ("cancelled", "no_show", "expired", "confirmed")


async def _bulk(table: Any, rows: list[Any]) -> list[int]:
    ids: list[int] = []
    for i in range(0, len(rows), 1000):
        ids += [r["id"] for r in await table.insert(*rows[i : i + 1000]).returning(table.id)]
    return ids


async def seed(per_day: int) -> date:
    from scheduler.db.queue_tables import QueueTicket
    from scheduler.db.tables import (
        Appointment,
        AppointmentEvent,
        AuditLog,
        Office,
        OfficeDay,
        OutboxMessage,
        Slot,
    )

    rng = random.Random(3)
    tz = ZoneInfo("Asia/Shanghai")
    today = datetime.now(UTC).astimezone(tz).date()
    first = today - timedelta(days=DAYS)
    office_ids = []
    for code in OFFICES:
        rows = await Office.insert(
            Office(code=code, name_zh=code, name_en=code, day_cap=per_day + 10)
        ).returning(Office.id)
        office_ids.append(rows[0]["id"])
    for office in office_ids:
        days = [first + timedelta(days=i) for i in range(DAYS)]
        await _bulk(
            OfficeDay, [OfficeDay(office=office, day=d, capacity=per_day + 10) for d in days]
        )
        slots = [
            Slot(
                office=office,
                service="marriage",
                day=d,
                start_at=datetime(d.year, d.month, d.day, 1 + h, tzinfo=UTC),
                end_at=datetime(d.year, d.month, d.day, 1 + h, 30, tzinfo=UTC),
                capacity=per_day // 8 + 2,
            )
            for d in days
            for h in range(8)
        ]
        slot_ids = await _bulk(Slot, slots)
        appointments, starts = [], []
        for k, slot in enumerate(slots):
            for n in range(per_day // 8):
                created = slot.start_at - timedelta(hours=rng.uniform(1, 24 * 40))
                appointments.append(
                    Appointment(
                        reference=f"B{office}-{k}-{n}",
                        manage_token_hash=UNUSED_HASH,
                        office=office,
                        slot=slot_ids[k],
                        service="marriage",
                        status=rng.choice(STATUSES),
                        created_at=created,
                        confirmed_at=created + timedelta(minutes=5),
                    )
                )
                starts.append((slot.day, slot.start_at))
        ids = await _bulk(Appointment, appointments)
        tickets, events, outbox = [], [], []
        for appointment_id, a, (day, start) in zip(ids, appointments, starts, strict=True):
            if a.status in ("completed", "no_show"):
                checked = start + timedelta(minutes=rng.randint(-20, 20))
                tickets.append(
                    QueueTicket(
                        office=office,
                        day=day,
                        appointment=appointment_id,
                        service="marriage",
                        label="M001",
                        status="completed",
                        order_at=checked,
                        checked_in_at=checked,
                    )
                )
                events.append(
                    AppointmentEvent(
                        appointment=appointment_id,
                        kind="called",
                        at=checked + timedelta(minutes=rng.uniform(0, 60)),
                    )
                )
            for m in range(2):
                status = rng.choice(("delivered",) * 8 + ("failed", "undelivered"))
                outbox.append(
                    OutboxMessage(
                        key=f"b:{appointment_id}:{m}",
                        to_phone="+8613800138000",
                        template="code",
                        locale="zh-Hans",
                        status=status,
                        created_at=a.created_at,
                        due_at=a.created_at,
                        error_code="30003" if status != "delivered" else None,
                        appointment_id=appointment_id,
                    )
                )
        await _bulk(QueueTicket, tickets)
        await _bulk(AppointmentEvent, events)
        await _bulk(OutboxMessage, outbox)
    audit = [
        AuditLog(
            actor_name=rng.choice(("th.clerk", "sz.clerk", "root")),
            action=rng.choice(("queue.call_next", "queue.check_in", "appointment.reveal")),
            office_id=rng.choice([*office_ids, None]),
            object_type="queue_ticket",
            object_id=str(i),
            after={"status": "called"},
            at=datetime.now(UTC) - timedelta(minutes=i * 5),
        )
        for i in range(AUDIT_ROWS)
    ]
    await _bulk(AuditLog, audit)
    return today


async def measure(per_day: int) -> dict[str, Any]:
    from scheduler.__main__ import migrate
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.db.tables import Appointment
    from scheduler.settings import get_settings
    from scheduler.usecases.reports import queries as reports
    from scheduler.usecases.staff import audit_log

    await migrate()
    await open_engine(get_settings())
    t0 = time.perf_counter()
    today = await seed(per_day)
    seeded_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "appointments": await Appointment.count(),
        "seed_s": round(seeded_s, 1),
    }
    offices = await reports.resolve_offices(None, [])
    start = today - timedelta(days=DAYS - 1)
    for name in reports.REPORTS:
        t0 = time.perf_counter()
        await reports.run(name, offices, start, today, "Asia/Shanghai")
        result[name] = round(time.perf_counter() - t0, 3)
    tz = ZoneInfo("Asia/Shanghai")
    scope = frozenset({offices[0].id})
    query = audit_log.AuditQuery(start=today - timedelta(days=DAYS - 1), end=today)
    t0 = time.perf_counter()
    _, total = await audit_log.search(query, scope, tz)
    result["audit_admin"] = round(time.perf_counter() - t0, 3)
    filtered = audit_log.AuditQuery(
        start=query.start, end=today, office=offices[0].id, action="appointment.reveal"
    )
    t0 = time.perf_counter()
    await audit_log.search(filtered, None, tz)
    result["audit_filtered"] = round(time.perf_counter() - t0, 3)
    result["audit_rows_seen"] = total
    await close_engine()
    return result


def child(database: str, per_day: int) -> dict[str, Any]:
    return run_child(__file__, database, ["--per-day", str(per_day)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=40)
    parser.add_argument(
        "--db", nargs="+", default=["postgres", "sqlite"], choices=["postgres", "sqlite"]
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.per_day))))
        return
    print(f"reports benchmark: {len(OFFICES)} offices x {DAYS} days x {args.per_day} a day")
    columns = ("appointments", "seed_s", *("bookings", "lead-time", "cancellations"))
    columns += ("queue", "sms", "reschedule", "audit_admin", "audit_filtered")
    print(f"{'db':9}" + "".join(f"{c:>15}" for c in columns))
    for database in args.db:
        r = child(database, args.per_day)
        print(f"{database:9}" + "".join(f"{r[c]:>15}" for c in columns))
    print(f"target: every report and audit page < {TARGET_S} s (times in seconds)")


if __name__ == "__main__":
    main()
