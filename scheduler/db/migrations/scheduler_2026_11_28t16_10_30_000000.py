"""An index on the audit log's object: the audit page places an entry without an
office through the other entries about the same object (scheduler/usecases/staff/audit_log.py)."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-28T16:10:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit log object index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS audit_log_object ON audit_log (object_type, object_id)"
        )

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS audit_log_object")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
