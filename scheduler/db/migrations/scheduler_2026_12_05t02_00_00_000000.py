"""The day's proofs on the slot rows (issue 16, docs/decisions.md "The day counter off
the booking's path"): ``day_covered`` (the slot caps alone keep the office-day cap)
and ``share_covered`` (the smallest unconfirmed share from which they keep the day's
share, NULL: never). Worked out here for every existing day; both start uncovered,
which is the old behaviour (the office-day counters were maintained until now)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Serial
from piccolo.engine.finder import engine_finder
from piccolo.table import Table

from scheduler.domain.day_cover import SlotBound, day_covered, share_threshold

ID = "2026-12-05T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "day and unconfirmed-share proofs on the slot rows"

STATEMENTS = (
    "ALTER TABLE slot ADD COLUMN day_covered BOOLEAN NOT NULL DEFAULT FALSE",
    "ALTER TABLE slot ADD COLUMN share_covered INTEGER NULL DEFAULT NULL",
)


class Slot(Table, tablename="slot"):
    id: Serial


async def _prove_existing_days() -> None:
    by_day: dict[tuple[Any, Any], list[SlotBound]] = defaultdict(list)
    for s in await Slot.raw(
        "SELECT office, day, capacity, reduced_capacity, booked, held FROM slot"
    ):
        cap = max(s["capacity"], s["reduced_capacity"] or 0)
        by_day[(s["office"], s["day"])].append(SlotBound(max(s["booked"], cap), s["held"], cap))
    for d in await Slot.raw("SELECT office, day, capacity FROM office_day"):
        slots = by_day.get((d["office"], d["day"]))
        if not slots:
            continue
        covered, share = day_covered(d["capacity"], slots), share_threshold(d["capacity"], slots)
        if covered or share is not None:
            await Slot.raw(
                "UPDATE slot SET day_covered = {}, share_covered = {}"
                " WHERE office = {} AND day = {}",
                covered,
                share,
                d["office"],
                d["day"],
            )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)
        await _prove_existing_days()

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        # The counters of covered days were not kept: back to maintained counters.
        await engine.run_ddl(
            "UPDATE office_day SET booked = (SELECT COALESCE(SUM(s.booked), 0) FROM slot s"
            " WHERE s.office = office_day.office AND s.day = office_day.day),"
            " held = (SELECT COALESCE(SUM(s.held), 0) FROM slot s"
            " WHERE s.office = office_day.office AND s.day = office_day.day)"
        )
        for column in ("share_covered", "day_covered"):
            await engine.run_ddl(f"ALTER TABLE slot DROP COLUMN {column}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
