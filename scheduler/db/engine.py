"""Database engines and the one way to open a write transaction."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from scheduler.settings import Settings


def engine_for(database_url: str) -> Engine:
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # timeout is SQLite's busy timeout: other *processes* (a CLI, a second
        # server) wait for the write lock instead of failing at once.
        return SQLiteEngine(path=path, timeout=30)
    dsn = database_url.replace("postgres://", "postgresql://", 1)
    return PostgresEngine(config={"dsn": dsn})


def current_engine() -> Engine:
    from scheduler.db.tables import Slot

    return Slot._meta.db


async def open_engine(settings: Settings) -> bool:
    """Start the pool; False if it was already running (then the caller must not close it)."""
    engine = current_engine()
    if isinstance(engine, PostgresEngine):
        if engine.pool is not None:
            return False
        await engine.start_connection_pool(
            min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
    elif isinstance(engine, SQLiteEngine):
        # WAL lets readers proceed while one writer commits; it persists in the file.
        await engine.run_ddl("PRAGMA journal_mode=WAL")
    return True


async def close_engine() -> None:
    engine = current_engine()
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()


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
    # PostgreSQL runs executemany as one statement per row; a multi-row VALUES
    # is one statement per chunk (asyncpg allows 32767 parameters).
    width = len(columns)
    per_chunk = max(1, 32000 // width)
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start : start + per_chunk]
        groups = ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")"
            for i in range(len(chunk))
        )
        sql = f"INSERT INTO {table} ({names}) VALUES {groups} ON CONFLICT DO NOTHING"  # noqa: S608
        await transaction.connection.execute(sql, *[v for row in chunk for v in row])
