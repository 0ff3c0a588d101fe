"""Unconfirmed holds counted per slot and office-day (issue 13.3): ``held`` counters
next to ``booked``, and on the appointment the slot whose counter its hold took
(``hold_slot``, NULL when it counts nowhere: confirmed, ended, or an offer or a
lottery award, whose phones were verified before), and ``awaiting_seat`` for a hold
made while the unconfirmed share was full: it takes its seat once both confirm."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-03T23:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unconfirmed hold counters, number hashes, scrubbed texts"

STATEMENTS = (
    "ALTER TABLE slot ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE office_day ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE appointment ADD COLUMN hold_slot INTEGER NULL DEFAULT NULL",
    "ALTER TABLE appointment ADD COLUMN awaiting_seat BOOLEAN NOT NULL DEFAULT FALSE",
    # The ID number's keyed hash whatever its type (issue 13.7), for the claims of the
    # appointments an offer or a lottery award makes; '' on rows from before.
    "ALTER TABLE waitlist_party ADD COLUMN number_hash VARCHAR(64) NOT NULL DEFAULT ''",
    "ALTER TABLE lottery_party ADD COLUMN number_hash VARCHAR(64) NOT NULL DEFAULT ''",
    # Secrets (codes, manage codes) masked in the text once sent (notify/scrub.py).
    "ALTER TABLE outbox_message ADD COLUMN scrubbed BOOLEAN NOT NULL DEFAULT FALSE",
    # The sweep that gives back counts of holds that left pending by another path.
    "CREATE INDEX IF NOT EXISTS appointment_hold_slot ON appointment (hold_slot)",
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
        await engine.run_ddl("DROP INDEX IF EXISTS appointment_hold_slot")
        for table, column in (
            ("outbox_message", "scrubbed"),
            ("lottery_party", "number_hash"),
            ("waitlist_party", "number_hash"),
            ("appointment", "awaiting_seat"),
            ("appointment", "hold_slot"),
            ("office_day", "held"),
            ("slot", "held"),
        ):
            await engine.run_ddl(f"ALTER TABLE {table} DROP COLUMN {column}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
