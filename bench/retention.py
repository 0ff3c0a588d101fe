"""Benchmark: the retention job erasing 10,000 appointments (20,000 parties, 20,000 SMS).

Prints, per database: the whole run's time, the number of batches and the longest
batch (one transaction each: how long the job may hold the write lock), and checks
that nothing personal is left.

    .venv/bin/python bench/retention.py [--appointments 10000] [--db postgres sqlite]

Each database runs in a child process (settings and Piccolo's engine are read once
per process); the seed is bench/reschedule.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _db import run_child

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


async def measure(appointments: int) -> dict[str, Any]:
    from reschedule import seed

    from scheduler.__main__ import migrate
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.db.tables import Appointment, OutboxMessage, Party
    from scheduler.settings import get_settings
    from scheduler.usecases.privacy import retention

    settings = get_settings()
    await migrate()
    await open_engine(settings)
    day = await seed(appointments)
    ids = [r["id"] for r in await Appointment.select(Appointment.id)]
    messages = [
        OutboxMessage(
            key=f"appointment:{i}:code:{role}",
            to_phone="+8613800138000",
            template="code",
            locale="zh-Hans",
            payload={"code": "123456"},
            body="【婚姻登记】验证码 123456",
            status="delivered",
            appointment_id=i,
        )
        for i in ids
        for role in ("a", "b")
    ]
    for start in range(0, len(messages), 1000):
        await OutboxMessage.insert(*messages[start : start + 1000])

    batches: list[float] = []
    erase_batch = retention._erase_appointments

    async def timed(candidates: list[int], now: datetime) -> int:
        t0 = time.perf_counter()
        try:
            return await erase_batch(candidates, now)
        finally:
            batches.append(time.perf_counter() - t0)

    retention._erase_appointments = timed  # type: ignore[assignment]
    now = datetime.combine(day + timedelta(days=settings.retention_days + 1), datetime.min.time())
    now = now.replace(tzinfo=UTC) + timedelta(hours=12)
    t0 = time.perf_counter()
    erased = await retention.erase_expired(now, settings)
    total_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = await retention.erase_expired(now, settings)
    rerun_s = time.perf_counter() - t0
    left = await Party.count().where(Party.name != "") + await OutboxMessage.count().where(
        OutboxMessage.to_phone != ""
    )
    await close_engine()
    return {
        "appointments": appointments,
        "erased": erased,
        "total_s": round(total_s, 3),
        "batches": len(batches),
        "longest_batch_s": round(max(batches), 3),
        "rerun_s": round(rerun_s, 3),
        "rerun_erased": again,
        "personal_left": left,
    }


def child(database: str, appointments: int) -> dict[str, Any]:
    return run_child(__file__, database, ["--appointments", str(appointments)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument(
        "--db", nargs="+", default=["postgres", "sqlite"], choices=["postgres", "sqlite"]
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.appointments))))
        return
    print(f"retention benchmark: {args.appointments} appointments past retention")
    columns = ("erased", "total_s", "batches", "longest_batch_s", "rerun_s", "personal_left")
    print(f"{'db':9}" + "".join(f"{c:>17}" for c in columns))
    for database in args.db:
        r = child(database, args.appointments)
        print(f"{database:9}" + "".join(f"{r[c]:>17}" for c in columns))


if __name__ == "__main__":
    main()
