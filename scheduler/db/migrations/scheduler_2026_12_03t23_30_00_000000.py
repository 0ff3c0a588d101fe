"""login_failure: failed staff sign-ins per account name and client address, for
growing delays instead of locking the account (scheduler/usecases/staff/accounts.py)."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-03T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "login failures per account and address"

# Same SQL on SQLite and PostgreSQL.
CREATE = (
    "CREATE TABLE IF NOT EXISTS login_failure ("
    " id {serial} PRIMARY KEY,"
    " key VARCHAR(80) NOT NULL UNIQUE,"
    " failures INTEGER NOT NULL DEFAULT 0,"
    " blocked_until BIGINT NOT NULL DEFAULT 0,"
    " last_failure BIGINT NOT NULL DEFAULT 0)"
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        serial = "SERIAL" if engine.engine_type == "postgres" else "INTEGER"
        await engine.run_ddl(CREATE.format(serial=serial))
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS login_failure_last ON login_failure (last_failure)"
        )
        # Accounts locked by the old rule: the lock was the weapon; release them.
        await engine.run_ddl("UPDATE staff SET locked_until = NULL, failed_logins = 0")

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP TABLE IF EXISTS login_failure")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
