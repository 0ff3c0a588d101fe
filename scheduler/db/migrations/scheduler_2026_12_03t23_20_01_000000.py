"""One row per (year, version) of a holiday notice: two superadmins loading the same
year at once get distinct versions or one refusal, never two rows claiming one
version (Piccolo's composite Unique fails on SQLite, hence raw DDL)."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-03T23:20:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "holiday notice version index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "CREATE UNIQUE INDEX IF NOT EXISTS holiday_notice_year_version"
            " ON holiday_notice (year, version)"
        )

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS holiday_notice_year_version")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
