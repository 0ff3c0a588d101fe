"""Benchmark: a closed blackout over 10,000 booked appointments across 5 offices.

Prints, per database: the preview (dry run) time, and the time from the
declaration to every appointment moved and every SMS enqueued, with the CPU that
cost (this process; the PostgreSQL cluster) and the cores other processes used
meanwhile; then checks the result from the database with its own connection (no
active appointment left inside; every slot, office-day, on-site window and
unconfirmed-share counter equal to a recount; the seed is checked the same way).
Targets on the 2-core build machine: preview < 2 s, declaration to done < 5 s.

    .venv/bin/python bench/reschedule.py [--appointments 10000] [--db postgres sqlite]
        [--profile DIR] [--analyze]

Each database runs in a child process: settings (and Piccolo's engine) are read
once per process.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _common import ACTIVE, Db, check_caps, machine_busy, postgres_cpu
from _db import run_child

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OFFICES = ("GZ-TH", "GZ-YX", "SZ-FT", "SZ-NS", "DG-SL")
TARGETS = {"preview_s": 2.0, "declare_to_done_s": 5.0}


async def seed(appointments: int) -> Any:
    """Five offices, and ``appointments`` holds spread over their first open day."""
    from scheduler.db.tables import (
        Appointment,
        Office,
        OfficeDay,
        OfficeService,
        OnsiteWindow,
        Party,
        Slot,
    )
    from scheduler.domain.calendar import onsite_window_start
    from scheduler.domain.identity import make_mainland_id, mask_id
    from scheduler.kernel.security import hash_token, new_reference
    from scheduler.usecases.calendar.slots import generate_slots

    per_office = appointments // len(OFFICES)
    hours = {str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(7)}
    for i, code in enumerate(OFFICES):
        rows = await Office.insert(
            Office(
                code=code,
                name_zh=f"{code} 婚姻登记处",
                name_en=f"{code} Registry",
                region=f"r{i % 2}",
                day_cap=per_office + 200,
                onsite_cap=1_000_000,
            )
        ).returning(Office.id)
        await OfficeService.insert(
            OfficeService(
                office=rows[0]["id"],
                service="marriage",
                slot_minutes=30,
                slot_cap=per_office // 14 + 20,
                weekly_hours=hours,
            )
        )
    now = datetime.now(UTC)
    await generate_slots(now)
    target_day = None
    n = 0
    for office in await Office.select():
        slots = (
            await Slot.select()
            .where((Slot.office == office["id"]) & (Slot.day >= (now + timedelta(days=3)).date()))
            .order_by(Slot.start_at)
        )
        target_day = target_day or slots[0]["day"]
        day_slots = [s for s in slots if s["day"] == target_day]
        appts, per_slot = [], {s["id"]: 0 for s in day_slots}
        for k in range(per_office):
            slot = day_slots[k % len(day_slots)]
            per_slot[slot["id"]] += 1
            appts.append(
                Appointment(
                    reference=new_reference(office["code"]),
                    manage_token_hash=hash_token(str(k)),
                    office=office["id"],
                    slot=slot["id"],
                    service="marriage",
                    status="confirmed",
                    locale="zh-Hans",
                    people=2,
                    created_at=now,
                )
            )
        ids = []
        for i in range(0, len(appts), 1000):
            ids += [
                r["id"]
                for r in await Appointment.insert(*appts[i : i + 1000]).returning(Appointment.id)
            ]
        parties = []
        for appointment_id in ids:
            for role in ("a", "b"):
                n += 1
                number = make_mainland_id(f"440106199{n // 100000 % 10}0101{n % 100000:05d}"[:17])
                parties.append(
                    Party(
                        appointment=appointment_id,
                        role=role,
                        name=f"测试{n}",
                        id_type="mainland_id",
                        id_masked=mask_id(number),
                        id_hash=f"h{n}",
                        phone=f"+86138{n:08d}",
                        code_hash="x",
                    )
                )
        for i in range(0, len(parties), 1000):
            await Party.insert(*parties[i : i + 1000])
        tz = ZoneInfo(office["timezone"])
        for slot in day_slots:
            await Slot.update({Slot.booked: per_slot[slot["id"]]}).where(Slot.id == slot["id"])
            await OnsiteWindow.update(
                {OnsiteWindow.people: OnsiteWindow.people + 2 * per_slot[slot["id"]]}
            ).where(
                (OnsiteWindow.office == office["id"])
                & (OnsiteWindow.window_start == onsite_window_start(slot["start_at"], tz))
            )
        await OfficeDay.update({OfficeDay.booked: per_office}).where(
            (OfficeDay.office == office["id"]) & (OfficeDay.day == target_day)
        )
    return target_day


async def measure(
    appointments: int, profile: str | None = None, analyze: bool = False
) -> dict[str, Any]:
    from scheduler.__main__ import migrate
    from scheduler.db.audit import NamedActor
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.db.tables import OutboxMessage
    from scheduler.settings import get_settings
    from scheduler.usecases.offices import blackouts, reschedule

    await migrate()
    await open_engine(get_settings())
    day = await seed(appointments)
    if analyze and os.environ.get("BENCH_PG_DATA"):
        # Planner statistics, as autovacuum keeps them on a database that has been in
        # use (the seed has just bulk-loaded tables the statistics still call empty).
        await Db(os.environ["DATABASE_URL"]).fetch("ANALYZE")
    decl = blackouts.Declaration(
        kind="closed",
        start_date=day,
        end_date=day,
        all_offices=True,
        reason={"zh-Hans": "疫情防控", "en": "Epidemic control"},
    )
    actor, now = NamedActor("bench"), datetime.now(UTC)
    t0 = time.perf_counter()
    preview = await blackouts.declare(
        decl, now=now, actor=actor, scope=None, dry_run=True, settings=get_settings()
    )
    preview_s = time.perf_counter() - t0
    profiler = cProfile.Profile() if profile else None
    seeded = await check_caps(Db(os.environ["DATABASE_URL"]))
    drift_before = sum(len(c.failures) for c in seeded.values())
    assert drift_before == 0, "the seed's counters must match its appointments"
    pg_data = os.environ.get("BENCH_PG_DATA")
    if os.environ.get("BENCH_PGSS_RESET"):  # pg_stat_statements of the run only
        await Db(os.environ["DATABASE_URL"]).fetch("SELECT pg_stat_statements_reset()")
    db_cpu0 = postgres_cpu(Path(pg_data)) if pg_data else 0.0
    busy0, cpu0 = machine_busy(), time.process_time()
    t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    declared = await blackouts.declare(
        decl, now=now, actor=actor, scope=None, dry_run=False, settings=get_settings()
    )
    await reschedule.execute(declared["run"]["id"], "bench", now, settings=get_settings())
    done_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    db_cpu_s = postgres_cpu(Path(pg_data)) - db_cpu0 if pg_data else 0.0
    others = (machine_busy() - busy0 - cpu_s - db_cpu_s) / done_s
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    # Checked from the database, beside the service's own tables: no active
    # appointment left on the closed day, and every slot, office-day, on-site window
    # and unconfirmed-share counter equal to a recount of the active appointments.
    db = Db(os.environ["DATABASE_URL"])
    statuses = ", ".join(f"'{s}'" for s in ACTIVE)
    inside = (
        await db.fetch(
            "SELECT COUNT(*) AS n FROM appointment a JOIN slot s ON s.id = a.slot"  # noqa: S608
            f" WHERE a.status IN ({statuses}) AND s.day = '{day.isoformat()}'"
        )
    )[0]["n"]
    caps_after = await check_caps(db)
    drift = sum(len(c.failures) for c in caps_after.values())
    checked = {kind: c.rows for kind, c in caps_after.items()}
    progress = await blackouts.progress(declared["run"]["id"])
    sms_enqueued = await OutboxMessage.count()
    # The engine keeps pooled SQLite connections (threads): close them, or the
    # process waits for them at exit.
    await close_engine()
    return {
        "appointments": appointments,
        "preview_s": round(preview_s, 3),
        "affected": preview["preview"]["affected"],
        "declare_to_done_s": round(done_s, 3),
        "moved": progress["moved"],
        "needs_rebooking": progress["needs_rebooking"],
        "sms_enqueued": sms_enqueued,
        "left_inside": inside,
        "counters_checked": checked,
        "cpu_s": round(cpu_s, 3),
        "db_cpu_s": round(db_cpu_s, 3) if pg_data else None,
        "others_cores": round(others, 2),
        "counter_drift": drift,
    }


def child(database: str, appointments: int, profile: str | None, analyze: bool) -> dict[str, Any]:
    args = ["--appointments", str(appointments)] + (["--analyze"] if analyze else [])
    if profile:
        Path(profile).mkdir(parents=True, exist_ok=True)
        args += ["--profile", str(Path(profile).resolve() / f"{database}.prof")]
    return run_child(__file__, database, args, {"SMS_QUIET_HOURS": "off"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument(
        "--db", nargs="+", default=["postgres", "sqlite"], choices=["postgres", "sqlite"]
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="write a cProfile of the declaration-to-done part per database to DIR/<db>.prof",
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="PostgreSQL: ANALYZE after seeding (statistics as on a database in use)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.appointments, args.profile, args.analyze))))
        return
    offices = len(OFFICES)
    print(f"reschedule benchmark: {args.appointments} appointments, {offices} offices, one day")
    columns = ("preview_s", "declare_to_done_s", "cpu_s", "db_cpu_s", "others_cores", "moved")
    columns += ("needs_rebooking", "sms_enqueued", "left_inside", "counter_drift")
    print(f"{'db':9}" + "".join(f"{c:>{len(c) + 2}}" for c in columns))
    for database in args.db:
        r = child(database, args.appointments, args.profile, args.analyze)
        print(f"{database:9}" + "".join(f"{r[c]!s:>{len(c) + 2}}" for c in columns))
        print(f"{'':9}  counters recounted: {r['counters_checked']}")
    print(
        f"targets: preview_s < {TARGETS['preview_s']}, declare_to_done_s < "
        f"{TARGETS['declare_to_done_s']}, left_inside = 0, counter_drift = 0"
    )
    print(
        "cpu_s: this process (the use cases and Piccolo), db_cpu_s: the PostgreSQL cluster,"
        " others_cores: cores other processes of the machine used meanwhile"
    )


if __name__ == "__main__":
    main()
