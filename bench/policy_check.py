"""Benchmark: what the policy checks add to each booking (bans.admit in
scheduler/usecases/policy/bans.py: the ID
types from the cached policies, then one indexed query for a ban of either partner),
with 20,000 ban rows in the table, on SQLite (a fresh temporary file).

    .venv/bin/python bench/policy_check.py [--calls 2000]

Prints the median and 95th percentile per call, cached and with the cache expired
every call (the worst case: one policy read more).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def main(calls: int) -> None:
    from scheduler.__main__ import migrate
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.db.policy_tables import Ban
    from scheduler.db.tables import Office
    from scheduler.settings import get_settings
    from scheduler.usecases.policy import bans, policies

    settings = get_settings()
    await migrate()
    await open_engine(settings)
    try:
        rows = await Office.insert(
            Office(code="GZ-TH", name_zh="天河", name_en="Tianhe")
        ).returning(Office.id)
        now = datetime.now(UTC)
        await Ban.insert(
            *[
                Ban(
                    key=f"h{i}:no_show:{i}",
                    id_hash=f"{i:064x}",
                    id_type="mainland_id",
                    id_masked="440**********1234",
                    office=rows[0]["id"],
                    appointment_id=i,
                    kind="no_show",
                    strikes=2,
                    starts_at=now - timedelta(days=1),
                    ends_at=now + timedelta(days=89),
                )
                for i in range(20_000)
            ]
        )
        parties = [("a", "mainland_id", "11010519491231002X"), ("b", "passport", "E12345678")]
        for label, expire in (("cached", False), ("cache expired each call", True)):
            times = []
            for _ in range(calls):
                if expire:
                    policies.invalidate()
                start = time.perf_counter()
                await bans.admit("marriage", parties, "Asia/Shanghai", now, settings)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95)]
            print(f"{label}: median {statistics.median(times):.3f} ms, p95 {p95:.3f} ms")
    finally:
        await close_engine()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-policy-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("JOBS_ENABLED", "false")
    asyncio.run(main(args.calls))
