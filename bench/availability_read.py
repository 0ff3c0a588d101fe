"""The availability read alone: CPU per computed month, in process, no HTTP and no cache.

Seeds the bench office (08:00-18:00 every day, 30-minute slots) on a throwaway
PostgreSQL cluster or a fresh SQLite file, declares a discouraged day and a closed
afternoon in the month (so blackouts are read and applied), then calls
``slots.availability`` for one month ``--calls`` times, one at a time, and prints the
process CPU and wall time per call. ``--app-dir`` runs another checkout's read (A/B):

    .venv/bin/python bench/availability_read.py --app-dir /tmp/old-checkout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import bench_offices_toml
from _db import run_child


async def measure(calls: int, offices_toml: str) -> dict[str, Any]:
    from scheduler.__main__ import migrate
    from scheduler.db.audit import NamedActor
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.settings import get_settings
    from scheduler.usecases.calendar import slots
    from scheduler.usecases.offices import blackouts, seed

    await migrate()
    await open_engine(get_settings())
    await seed.load_offices(Path(offices_toml))
    now = datetime.now(UTC)
    await slots.generate_slots(now)
    start = now.date() + timedelta(days=2)
    actor, reason = NamedActor("bench"), {"zh-Hans": "检修", "en": "Maintenance"}
    for kind, day, hours in (("discouraged", 5, None), ("closed", 9, (13, 18))):
        decl = blackouts.Declaration(
            kind,
            start + timedelta(days=day),
            start + timedelta(days=day),
            offices=["BENCH"],
            start_time=datetime.min.replace(hour=hours[0]).time() if hours else None,
            end_time=datetime.min.replace(hour=hours[1]).time() if hours else None,
            reason=reason,
        )
        await blackouts.declare(
            decl, now=now, actor=actor, scope=None, dry_run=False, settings=get_settings()
        )
    end = start + timedelta(days=29)
    first = await slots.availability("BENCH", "marriage", start, end, now)
    assert sum(len(d["slots"]) for d in first["days"]) > 500, "a month of slots"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await slots.availability("BENCH", "marriage", start, end, now, locale="en")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await close_engine()
    return {"calls": calls, "cpu_us": cpu / calls * 1e6, "wall_us": wall / calls * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument(
        "--db", nargs="+", default=["postgres", "sqlite"], choices=["postgres", "sqlite"]
    )
    parser.add_argument("--app-dir", type=Path, default=None, help="checkout whose read to run")
    parser.add_argument("--offices", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.app_dir is not None:
            sys.path.insert(0, str(args.app_dir.resolve()))
        print(json.dumps(asyncio.run(measure(args.calls, args.offices))))
        return
    toml = Path(tempfile.mkdtemp(prefix="availability-read-")) / "offices.toml"
    toml.write_text(bench_offices_toml(100), encoding="utf-8")
    child_args = ["--calls", str(args.calls), "--offices", str(toml)]
    if args.app_dir is not None:
        child_args += ["--app-dir", str(args.app_dir)]
    print(f"availability read, one month, {args.calls} calls, app {args.app_dir or 'here'}")
    for database in args.db:
        r = run_child(__file__, database, child_args)
        print(f"  {database:9} CPU {r['cpu_us']:8.0f} µs/call   wall {r['wall_us']:8.0f} µs/call")


if __name__ == "__main__":
    main()
