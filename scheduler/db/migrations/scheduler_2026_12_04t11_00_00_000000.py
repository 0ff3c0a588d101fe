"""One party table (issue 15.3): the partners of lottery applications and waiting-list
entries move into ``party``, beside those of appointments, and ``lottery_party`` and
``waitlist_party`` are dropped.

A party now has exactly one owner: ``appointment``, ``application`` (lottery) or
``entry`` (waiting list), nullable foreign keys with a CHECK that exactly one is set
(docs/decisions.md, "One verified couple"). Every column moves as it is: sealed,
masked and hashed IDs, number hashes, phones, code hashes (each owner keeps its own
code-hash formula, so codes already texted still match), attempts spent and
confirmation times. The moved rows get new ``party.id`` values: nothing refers to a
party's id. Booking parties keep theirs.

PostgreSQL alters ``party`` in place; SQLite cannot add a CHECK to a table, so it
builds the new table, copies the rows with their ids and renames it (the way
SQLite's own documentation gives for such changes).
"""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-04T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "one party table for appointments, lottery applications and waiting-list entries"

# The columns every party table had (lottery and waiting list also ``number_hash``).
COMMON = (
    "role, name, id_type, id_sealed, id_masked, id_hash, phone, code_hash, code_attempts,"
    " confirmed_at"
)
ONE_OWNER = (
    "CONSTRAINT party_one_owner CHECK ("
    "(CASE WHEN appointment IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN application IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN entry IS NULL THEN 0 ELSE 1 END) = 1)"
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS party_appointment ON party (appointment)",
    "CREATE INDEX IF NOT EXISTS party_application ON party (application)",
    "CREATE INDEX IF NOT EXISTS party_entry ON party (entry)",
    "CREATE INDEX IF NOT EXISTS party_id_hash ON party (id_hash)",
    # One partner per role and owner, as for appointments since the first migrations.
    "CREATE UNIQUE INDEX IF NOT EXISTS party_appointment_role_uq ON party (appointment, role)",
    "CREATE UNIQUE INDEX IF NOT EXISTS party_application_role_uq ON party (application, role)",
    "CREATE UNIQUE INDEX IF NOT EXISTS party_entry_role_uq ON party (entry, role)",
)
MOVE = (
    f"INSERT INTO party (application, number_hash, {COMMON})"  # noqa: S608 - constant SQL
    f" SELECT application, number_hash, {COMMON} FROM lottery_party ORDER BY id",
    f"INSERT INTO party (entry, number_hash, {COMMON})"  # noqa: S608 - constant SQL
    f" SELECT entry, number_hash, {COMMON} FROM waitlist_party ORDER BY id",
    "DROP TABLE lottery_party",
    "DROP TABLE waitlist_party",
)

POSTGRES = (
    "ALTER TABLE party ALTER COLUMN appointment DROP NOT NULL",
    "ALTER TABLE party ADD COLUMN application INTEGER NULL DEFAULT NULL"
    " REFERENCES lottery_application (id) ON DELETE CASCADE ON UPDATE CASCADE",
    "ALTER TABLE party ADD COLUMN entry INTEGER NULL DEFAULT NULL"
    " REFERENCES waitlist_entry (id) ON DELETE CASCADE ON UPDATE CASCADE",
    "ALTER TABLE party ADD COLUMN number_hash VARCHAR(64) NOT NULL DEFAULT ''",
    f"ALTER TABLE party ADD {ONE_OWNER}",
    # The moved rows take ids from the sequence: past every id in use, even one a
    # restore or a hand-made row wrote without it.
    "SELECT setval(pg_get_serial_sequence('party', 'id'),"
    " COALESCE((SELECT MAX(id) FROM party), 0) + 1, false)",
)

SQLITE = (
    'CREATE TABLE party_new ("id" INTEGER PRIMARY KEY NOT NULL,'
    ' "appointment" INTEGER REFERENCES "appointment" ("id")'
    " ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null,"
    ' "application" INTEGER REFERENCES "lottery_application" ("id")'
    " ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null,"
    ' "entry" INTEGER REFERENCES "waitlist_entry" ("id")'
    " ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null,"
    " \"role\" VARCHAR(1) NOT NULL DEFAULT '', \"name\" VARCHAR(100) NOT NULL DEFAULT '',"
    " \"id_type\" VARCHAR(24) NOT NULL DEFAULT '', \"id_sealed\" TEXT NOT NULL DEFAULT '',"
    " \"id_masked\" VARCHAR(40) NOT NULL DEFAULT '', \"id_hash\" VARCHAR(64) NOT NULL DEFAULT '',"
    " \"number_hash\" VARCHAR(64) NOT NULL DEFAULT '', \"phone\" VARCHAR(20) NOT NULL DEFAULT '',"
    " \"code_hash\" VARCHAR(64) NOT NULL DEFAULT '',"
    ' "code_attempts" INTEGER NOT NULL DEFAULT 0, "confirmed_at" TIMESTAMPTZ DEFAULT null,'
    f" {ONE_OWNER})",
    f"INSERT INTO party_new (id, appointment, {COMMON}) SELECT id, appointment, {COMMON}"  # noqa: S608
    " FROM party ORDER BY id",
    "DROP TABLE party",
    "ALTER TABLE party_new RENAME TO party",
)

# Back: the two tables again, their rows moved back out of ``party``.
BACK_TABLES = tuple(
    f"CREATE TABLE {table} (id {{serial}} PRIMARY KEY,"
    f" {owner} INTEGER NULL DEFAULT NULL REFERENCES {parent} (id)"
    " ON DELETE CASCADE ON UPDATE CASCADE,"
    " role VARCHAR(1) NOT NULL DEFAULT '', name VARCHAR(100) NOT NULL DEFAULT '',"
    " id_type VARCHAR(24) NOT NULL DEFAULT '', id_sealed TEXT NOT NULL DEFAULT '',"
    " id_masked VARCHAR(40) NOT NULL DEFAULT '', id_hash VARCHAR(64) NOT NULL DEFAULT '',"
    " phone VARCHAR(20) NOT NULL DEFAULT '', code_hash VARCHAR(64) NOT NULL DEFAULT '',"
    " code_attempts INTEGER NOT NULL DEFAULT 0, confirmed_at TIMESTAMPTZ NULL DEFAULT NULL,"
    " number_hash VARCHAR(64) NOT NULL DEFAULT '')"
    for table, owner, parent in (
        ("lottery_party", "application", "lottery_application"),
        ("waitlist_party", "entry", "waitlist_entry"),
    )
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scheduler", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        steps = POSTGRES if engine.engine_type == "postgres" else SQLITE
        for statement in (*steps, *INDEXES, *MOVE):
            await engine.run_ddl(statement)

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        serial = "SERIAL" if engine.engine_type == "postgres" else "INTEGER"
        for statement in BACK_TABLES:
            await engine.run_ddl(statement.format(serial=serial))
        for table, owner in (("lottery_party", "application"), ("waitlist_party", "entry")):
            await engine.run_ddl(
                f"INSERT INTO {table} ({owner}, number_hash, {COMMON})"  # noqa: S608 - constant SQL
                f" SELECT {owner}, number_hash, {COMMON} FROM party"
                f" WHERE {owner} IS NOT NULL ORDER BY id"
            )
            await engine.run_ddl(f"CREATE INDEX {table}_{owner} ON {table} ({owner})")
            await engine.run_ddl(f"CREATE INDEX {table}_id_hash ON {table} (id_hash)")
        await engine.run_ddl("DELETE FROM party WHERE appointment IS NULL")
        for index in ("party_application", "party_entry"):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {index}")
            await engine.run_ddl(f"DROP INDEX IF EXISTS {index}_role_uq")
        if engine.engine_type == "postgres":
            await engine.run_ddl("ALTER TABLE party DROP CONSTRAINT party_one_owner")
            for column in ("application", "entry", "number_hash"):
                await engine.run_ddl(f"ALTER TABLE party DROP COLUMN {column}")
        # SQLite keeps the three columns and the CHECK (it cannot drop a column
        # that a foreign key or a CHECK names): appointment rows still pass it.

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
