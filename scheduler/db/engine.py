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
