"""Couples' own access (issue 14): code resends, access recovery by SMS, the
manage code kept sealed until the confirmation text. The tables are frozen here
(later changes to scheduler/db/couple_tables.py need a migration of their own)
and created by Piccolo, which writes the DDL for SQLite and PostgreSQL alike."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

ID = "2026-12-03T23:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "code resends, manage recovery, manage text"


class Appointment(Table, tablename="appointment"):
    id: Serial


class CodeResend(Table, tablename="code_resend"):
    id: Serial
    appointment = ForeignKey(references=Appointment, index=True)
    role = Varchar(length=1)
    at = Timestamptz(default=TimestamptzNow())


class ManageRecovery(Table, tablename="manage_recovery"):
    id: Serial
    appointment = ForeignKey(references=Appointment, index=True)
    role = Varchar(length=1)
    code_hash = Varchar(length=64)
    attempts = Integer(default=0)
    expires_at = Timestamptz(default=TimestamptzNow())
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class ManageText(Table, tablename="manage_text"):
    id: Serial
    appointment = ForeignKey(references=Appointment, unique=True)
    token_sealed = Text()


TABLES = (CodeResend, ManageRecovery, ManageText)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        for table in TABLES:
            await table.create_table(if_not_exists=True)

    async def run_backwards() -> None:
        for table in reversed(TABLES):
            await table.alter().drop_table(if_exists=True)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
