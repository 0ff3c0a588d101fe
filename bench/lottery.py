"""Benchmark: the lottery draw with 10,000 confirmed applications for 500 seats.

Prints the pure draw (order + seating, no database) and the draw job on a
database (one transaction: order, 500 appointments with parties, claims, events,
1,000 SMS rows, counters), then checks the result (500 winners, counters equal).

    .venv/bin/python bench/lottery.py [--applications 10000] [--seats 500]
    DATABASE_URL=postgresql://... .venv/bin/python bench/lottery.py   # another database

Without DATABASE_URL it uses a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pure(applications: int, seats: int) -> float:
    from scheduler.domain import lottery as rules

    refs = [f"LOT-{i:04X}-{i:04X}" for i in range(applications)]
    entries = {r: rules.Entry(r, (r + "a", r + "b"), (rules.Preference(1, None),)) for r in refs}
    window = datetime(2027, 2, 14, 1, tzinfo=UTC)
    start = time.perf_counter()
    order = rules.draw_order(hashlib.sha256(b"bench").hexdigest(), refs)
    room = rules.Room(1, 1, "09:00", window, seats)
    got = rules.allocate(
        [entries[r] for r in order],
        rules.Seats([room], {1: seats}, {(1, window): 2 * seats}),
    )
    elapsed = time.perf_counter() - start
    assert len(got.awards) == seats
    return elapsed


async def on_database(applications: int, seats: int) -> dict[str, float]:
    from scheduler.__main__ import migrate
    from scheduler.db.engine import close_engine, open_engine, write_transaction
    from scheduler.db.lottery_tables import Lottery, LotteryApplication, LotteryOffice
    from scheduler.db.tables import Office, OfficeDay, OfficeService, Party, Slot
    from scheduler.domain import lottery as rules
    from scheduler.domain.identity import make_mainland_id
    from scheduler.settings import get_settings
    from scheduler.usecases.calendar.slots import generate_slots
    from scheduler.usecases.lottery import draw as lottery
    from scheduler.usecases.privacy.personal_data import id_columns

    settings = get_settings()
    await migrate()
    await open_engine(settings)
    try:
        now = datetime.now(UTC)
        office = await Office.insert(
            Office(
                code="GZ-TH",
                name_zh="天河",
                name_en="Tianhe",
                day_cap=seats,
                onsite_cap=100_000,
                booking_days_ahead=20,
            )
        ).returning(Office.id)
        office_id = office[0]["id"]
        hours = {str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(7)}
        await OfficeService.insert(
            OfficeService(
                office=office_id,
                service="marriage",
                slot_minutes=30,
                slot_cap=50,
                weekly_hours=hours,
            )
        )
        await generate_slots(now)
        day = (
            await Slot.select(Slot.day)
            .where(Slot.day >= (now + timedelta(days=10)).date())
            .order_by(Slot.day)
            .first()
        )["day"]
        seed = hashlib.sha256(b"bench-db").hexdigest()
        row = await Lottery.insert(
            Lottery(
                day=day,
                service="marriage",
                opens_at=now - timedelta(days=2),
                closes_at=now - timedelta(seconds=1),
                confirm_hours=48,
                status="scheduled",
                seed_sha256=rules.commitment(seed),
                seed=seed,
            )
        ).returning(Lottery.id)
        lottery_id = row[0]["id"]
        await LotteryOffice.insert(
            LotteryOffice(lottery=lottery_id, office=office_id, day=day, service="marriage")
        )
        prefs = [{"office": office_id, "start": None}]
        for chunk in range(0, applications, 500):
            async with write_transaction():
                apps = await LotteryApplication.insert(
                    *[
                        LotteryApplication(
                            lottery=lottery_id,
                            reference=f"LOT-{i:04X}-{i:04X}",
                            manage_token_hash="x" * 64,
                            status="confirmed",
                            preferences=prefs,
                        )
                        for i in range(chunk, min(chunk + 500, applications))
                    ]
                ).returning(LotteryApplication.id)
                parties = []
                for n, app in enumerate(apps):
                    for role in ("a", "b"):
                        k = 2 * (chunk + n) + (role == "b")
                        number = make_mainland_id(
                            f"4401061990{k // 28000 % 12 + 1:02d}{k % 28 + 1:02d}{k % 1000:03d}"
                        )
                        parties.append(
                            Party(
                                application=app["id"],
                                role=role,
                                name=f"P{k}",
                                id_type="mainland_id",
                                phone=f"+86138{k:08d}",
                                code_hash="",
                                **id_columns(settings, "mainland_id", number + f"#{k}"),
                            )
                        )
                await Party.insert(*parties)
        start = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                result = await lottery.draw(lottery_id, datetime.now(UTC), settings)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        else:
            result = await lottery.draw(lottery_id, datetime.now(UTC), settings)
        elapsed = time.perf_counter() - start
        assert result is not None and result["won"] == seats, result
        taken = (
            await OfficeDay.select(OfficeDay.booked)
            .where((OfficeDay.office == office_id) & (OfficeDay.day == day))
            .first()
        )
        assert taken["booked"] == seats
        return {"draw_s": elapsed}
    finally:
        await close_engine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=10_000)
    parser.add_argument("--seats", type=int, default=500)
    args = parser.parse_args()
    print(
        f"pure draw, {args.applications} applications, {args.seats} seats:"
        f" {pure(args.applications, args.seats):.3f} s"
    )
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ.setdefault("APP_ENV", "test")
    os.environ.setdefault("JOBS_ENABLED", "false")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789abcdef")
    # PostgreSQL refuses to start without DATA_KEYS (issue 13).
    os.environ.setdefault("DATA_KEYS", "YmVuY2gtZGF0YS1rZXktMDEyMzQ1Njc4OWFiY2RlZjA")
    got = asyncio.run(on_database(args.applications, args.seats))
    kind = os.environ["DATABASE_URL"].split(":", 1)[0]
    print(f"draw job on {kind}: {got['draw_s']:.3f} s (one transaction: appointments, SMS rows)")


if __name__ == "__main__":
    main()
