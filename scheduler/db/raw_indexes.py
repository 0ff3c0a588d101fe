"""Composite unique indexes as Piccolo migrations (its composite Unique does not
apply on SQLite, so these are plain CREATE UNIQUE INDEX statements)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

Index = tuple[str, str, str]  # name, table, "column, column"


def unique_indexes(
    migration_id: str, description: str, indexes: list[Index]
) -> Callable[[], Awaitable[MigrationManager]]:
    """The ``forwards`` function of a migration that creates ``indexes``."""

    async def forwards() -> MigrationManager:
        manager = MigrationManager(
            migration_id=migration_id, app_name="scheduler", description=description
        )

        async def run() -> None:
            engine = engine_finder()
            assert engine is not None
            for name, table, columns in indexes:
                sql = f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table} ({columns})"
                await engine.run_ddl(sql)

        async def run_backwards() -> None:
            engine = engine_finder()
            assert engine is not None
            for name, _table, _columns in indexes:
                await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

        manager.add_raw(run)
        manager.add_raw_backwards(run_backwards)
        return manager

    return forwards
