"""Waiting holds bounded per slot (issue 16): ``slot.waiting`` counts the holds made
beyond the unconfirmed share that wait for a seat, and ``appointment.wait_slot``
names the slot whose count a waiting hold took (NULL once it took its seat or
ended), like ``held``/``hold_slot`` for the share.

Backfilled from the holds waiting now: every ``pending_confirmation`` appointment
with ``awaiting_seat`` counts on its slot. A count so made may exceed the new bound
(waiting holds were unbounded before): it only refuses new waiting holds until it
falls back under it, as each waiting hold confirms or ends.
"""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-05T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "waiting holds counted per slot"

STATEMENTS = (
    "ALTER TABLE slot ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE appointment ADD COLUMN wait_slot INTEGER NULL DEFAULT NULL",
    # The expiry job's sweep of counts left by holds that ended another way.
    "CREATE INDEX IF NOT EXISTS appointment_wait_slot ON appointment (wait_slot)",
    "UPDATE appointment SET wait_slot = slot"
    " WHERE status = 'pending_confirmation' AND awaiting_seat",
    # A correlated subquery: the same statement on both databases (SQLite has no
    # UPDATE ... FROM before 3.33).
    "UPDATE slot SET waiting = (SELECT COUNT(*) FROM appointment a WHERE a.wait_slot = slot.id)"
    " WHERE id IN (SELECT wait_slot FROM appointment WHERE wait_slot IS NOT NULL)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        # SQLite cannot drop an indexed column: the index goes first.
        await engine.run_ddl("DROP INDEX IF EXISTS appointment_wait_slot")
        await engine.run_ddl("ALTER TABLE appointment DROP COLUMN wait_slot")
        await engine.run_ddl("ALTER TABLE slot DROP COLUMN waiting")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
