"""Composite unique indexes (Piccolo's composite Unique does not apply on SQLite)."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-28T12:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite unique indexes"

INDEXES = [
    ("slot_office_service_start_uq", "slot", "office, service, start_at"),
    ("office_day_office_day_uq", "office_day", "office, day"),
    ("onsite_window_office_start_uq", "onsite_window", "office, window_start"),
    ("office_service_office_service_uq", "office_service", "office, service"),
    ("party_appointment_role_uq", "party", "appointment, role"),
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
