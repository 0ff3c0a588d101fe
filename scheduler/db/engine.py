"""Database engines and the one way to open a write transaction."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType, dict_factory

from scheduler.db.replica import PrimaryWithReplica
from scheduler.settings import Settings


def engine_for(database_url: str, replica_url: str = "") -> Engine:
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # timeout is SQLite's busy timeout: other *processes* (a CLI, a second
        # server) wait for the write lock instead of failing at once.
        return ReusingSQLiteEngine(path=path, timeout=30)
    dsn = database_url.replace("postgres://", "postgresql://", 1)
    if replica_url:
        replica_dsn = replica_url.replace("postgres://", "postgresql://", 1)
        return PrimaryWithReplica(config={"dsn": dsn}, replica_dsn=replica_dsn)
    return PostgresEngine(config={"dsn": dsn})


class _Lease:
    """A pooled aiosqlite connection lent to a Piccolo transaction or batch: their
    ``close()`` gives it back instead of stopping its thread."""

    def __init__(self, engine: ReusingSQLiteEngine, connection: aiosqlite.Connection) -> None:
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_connection", connection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)

    async def close(self) -> None:
        await self._engine._release(self._connection)


class ReusingSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLiteEngine opens a new aiosqlite connection (a new thread, a file
    open and a PRAGMA) for every query outside a transaction and for every
    transaction, and sends ``PRAGMA foreign_keys = 1`` before every statement inside
    one. Measured with bench/rush.py, that is most of the server's CPU per booking on
    SQLite. Between ``start_pool`` and ``close_pool`` (the app's lifespan) this engine
    keeps idle connections for the loop that started it and sets the PRAGMA once per
    connection; elsewhere (CLI, other loops) a connection is closed after use."""

    KEEP_IDLE = 8

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[aiosqlite.Connection] = []

    @property
    def pooling(self) -> bool:
        return self._pool_loop is not None

    def start_pool(self) -> None:
        self._pool_loop = asyncio.get_running_loop()

    async def close_pool(self) -> None:
        self._pool_loop = None
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def _acquire(self) -> aiosqlite.Connection:
        if self._idle and asyncio.get_running_loop() is self._pool_loop:
            return self._idle.pop()
        connection = await aiosqlite.connect(**self.connection_kwargs)
        connection.row_factory = dict_factory  # type: ignore[assignment]  # as Piccolo does
        await connection.execute("PRAGMA foreign_keys = 1")
        return connection

    async def _release(self, connection: aiosqlite.Connection) -> None:
        keep = (
            asyncio.get_running_loop() is self._pool_loop
            and len(self._idle) < self.KEEP_IDLE
            and not connection.in_transaction  # a failed COMMIT/ROLLBACK: drop it
        )
        if keep:
            self._idle.append(connection)
        else:
            await connection.close()

    async def get_connection(self) -> Any:
        return _Lease(self, await self._acquire())

    async def _run_in_new_connection(
        self, query: str, args: Any = None, query_type: str = "generic", table: Any = None
    ) -> Any:
        connection = await self._acquire()
        try:
            async with connection.execute(query, args or []) as cursor:
                return await cursor.fetchall()  # autocommit: isolation_level=None
        finally:
            await self._release(connection)

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: Any = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()


def current_engine() -> Engine:
    from scheduler.db.tables import Slot

    return Slot._meta.db


async def _keep_session(_connection: object) -> None:
    """Pool release without asyncpg's reset query (advisory unlock, CLOSE ALL,
    UNLISTEN, RESET ALL): one more round trip per query outside a transaction.
    asyncpg still rolls back a transaction left open. We keep no session state on
    pooled connections (no SET, LISTEN or session advisory locks)."""


async def open_engine(settings: Settings) -> bool:
    """Start the pool; False if it was already running (then the caller must not close it)."""
    engine = current_engine()
    if isinstance(engine, PostgresEngine):
        if engine.pool is not None:
            return False
        await engine.start_connection_pool(
            min_size=settings.db_pool_min, max_size=settings.db_pool_max, reset=_keep_session
        )
    elif isinstance(engine, SQLiteEngine):
        if isinstance(engine, ReusingSQLiteEngine) and engine.pooling:
            return False
        # WAL lets readers proceed while one writer commits; it persists in the file.
        await engine.run_ddl("PRAGMA journal_mode=WAL")
        if isinstance(engine, ReusingSQLiteEngine):
            engine.start_pool()
    return True


async def close_engine() -> None:
    engine = current_engine()
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()
    elif isinstance(engine, ReusingSQLiteEngine):
        await engine.close_pool()


# SQLite allows one writer at a time. Queuing writers of this process on an
# asyncio lock (instead of letting each connection spin in SQLite's busy
# handler) keeps latency fair and makes "database is locked" impossible within
# one process. One lock per event loop: tests and the CLI run several loops.
_write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _write_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _write_locks.get(loop)
    if lock is None:
        lock = _write_locks[loop] = asyncio.Lock()
    return lock


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """One transaction that may change capacity counters; rolls back on any error."""
    engine = current_engine()
    if isinstance(engine, SQLiteEngine):
        async with (
            _write_lock(),
            engine.transaction(transaction_type=TransactionType.immediate),
        ):
            yield
    else:
        async with engine.transaction():
            yield


def is_unique_violation(exc: BaseException) -> bool:
    """True for a unique-constraint failure on either database."""
    import sqlite3

    import asyncpg

    if isinstance(exc, asyncpg.UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


async def insert_rows(table: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    """Insert many rows with one prepared statement on the current transaction's
    connection, skipping rows that violate a unique index.

    Piccolo builds a Table object and a query string per row, which costs more
    than the database itself for thousands of rows (a reschedule run's SMS and
    history). Call inside ``write_transaction``; values are plain Python values
    (JSON already serialised).
    """
    if not rows:
        return
    engine = current_engine()
    transaction = engine.current_transaction.get()
    if transaction is None:
        raise RuntimeError("insert_rows needs a transaction")
    names = ", ".join(columns)
    if isinstance(engine, SQLiteEngine):
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
        await transaction.connection.executemany(sql, rows)
        return
    # PostgreSQL runs executemany as one statement per row, and a multi-row VALUES
    # of thousands of parameters costs a new statement text per row count and a
    # long parse: one array per column through unnest() is one short prepared
    # statement whatever the number of rows (bench/reschedule.py, docs/performance.md).
    connection = transaction.connection
    types = await _column_types(connection, table, columns)
    arrays = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    sql = (
        f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608
        " ON CONFLICT DO NOTHING"
    )
    await connection.execute(sql, *[list(column) for column in zip(*rows, strict=True)])


# PostgreSQL type names of the columns insert_rows writes, per table (the schema
# changes only with a migration, which restarts the processes).
_pg_types: dict[str, dict[str, str]] = {}


async def _column_types(connection: Any, table: str, columns: tuple[str, ...]) -> list[str]:
    known = _pg_types.get(table, {})
    if not all(c in known for c in columns):
        rows = await connection.fetch(
            "SELECT attname, format_type(atttypid, NULL) AS type FROM pg_attribute"
            " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            table,
        )
        known = _pg_types[table] = {r["attname"]: r["type"] for r in rows}
    return [known[c] for c in columns]
