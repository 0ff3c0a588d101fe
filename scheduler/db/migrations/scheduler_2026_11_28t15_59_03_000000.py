"""Seal the plaintext ID numbers of existing parties, then drop the plaintext column.

Runs with the deployment's settings: the values are sealed with the first key of
DATA_KEYS (or the key derived from SECRET_KEY outside production), so set
DATA_KEYS before migrating. Piccolo runs raw steps before the column drop, in one
transaction. Self-contained on purpose: a migration must not change with the code.
Afterwards the old row versions still hold plaintext on disk until VACUUM (SQLite)
or VACUUM FULL party (PostgreSQL); see docs/decisions.md.
"""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-28T15:59:03:000000"
VERSION = "1.38.0"
DESCRIPTION = "data protection: seal existing ID numbers, drop party.id_number"

BATCH = 1000


def _mask(number: str) -> str:
    # scheduler.domain.identity.mask_id as of this migration.
    length = len(number)
    if length >= 14:
        return number[:3] + "*" * (length - 7) + number[-4:]
    if length > 4:
        return "*" * (length - 2) + number[-2:]
    return "*" * length


async def seal_existing() -> int:
    from scheduler.kernel.crypto import seal
    from scheduler.settings import get_settings

    settings = get_settings()
    engine = engine_finder()
    assert engine is not None
    converted, last = 0, 0
    while True:
        rows = await engine.run_querystring(
            QueryString(
                "SELECT id, id_number FROM party WHERE id > {} ORDER BY id LIMIT {}", last, BATCH
            )
        )
        if not rows:
            return converted
        last = rows[-1]["id"]
        for row in rows:
            number = row["id_number"] or ""
            await engine.run_querystring(
                QueryString(
                    "UPDATE party SET id_sealed = {}, id_masked = {} WHERE id = {}",
                    seal(settings, "id_number", number) if number else "",
                    _mask(number),
                    row["id"],
                )
            )
            converted += 1


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)
    manager.add_raw(seal_existing)
    manager.drop_column(
        table_class_name="Party",
        tablename="party",
        column_name="id_number",
        db_column_name="id_number",
        schema=None,
    )
    return manager
