"""One item per run and appointment; one row per blackout and office."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-28T13:27:18:000000"
VERSION = "1.38.0"
DESCRIPTION = "blackout unique indexes"

INDEXES = [
    ("reschedule_item_run_appointment_uq", "reschedule_item", "run, appointment"),
    ("blackout_office_blackout_office_uq", "blackout_office", "blackout, office"),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for name, table, columns in INDEXES:
            await engine.run_ddl(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table} ({columns})")

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        for name, _table, _columns in INDEXES:
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
