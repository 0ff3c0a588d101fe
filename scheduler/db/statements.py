"""Hot-path statements sent straight to the driver.

``Table.raw(sql, *args)`` builds a ``QueryString`` for every call (fragments,
bundling, compiling to ``$n`` or ``?``) and Piccolo's ORM inserts build a ``Table``
object and convert every value on top: measured with bench/rush.py and py-spy, that
was a fifth of the server's CPU per booking (docs/performance.md, "The booking's own
CPU"). ``fetch`` takes the same ``{}``-placeholder SQL as ``Table.raw``, compiles it
once per database kind and runs it on the connection of the current transaction
(or the pool's), so a converted call site keeps its statement word for word.

Values go to the driver as they are: JSON must already be a string; datetimes,
dates, ints and strings work on both databases (Piccolo registers the SQLite
adapters on import).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from scheduler.db.engine import ReusingSQLiteEngine, current_engine

# A statement with ``{}`` placeholders and its values, for ``fetch_all``.
Statement = tuple[str, Sequence[Any]]

_compiled: dict[tuple[str, bool], str] = {}


def insert(
    table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
) -> Statement:
    """``INSERT INTO table (columns) VALUES (...), ...`` + ``tail`` (``RETURNING ...``,
    ``ON CONFLICT ...``) with the rows' values, for ``fetch_all``: the plain insert the
    hot path sends instead of Piccolo's insert of Table objects, which costs more CPU
    than the database does for it. Table and column names are the caller's constants."""
    one = "(" + ", ".join("{}" for _ in columns) + ")"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * len(rows))  # noqa: S608
    return sql + (f" {tail}" if tail else ""), [v for row in rows for v in row]


def compile_sql(sql: str, postgres: bool) -> str:
    """``{}`` placeholders as ``$1, $2, ...`` (PostgreSQL) or ``?`` (SQLite)."""
    key = (sql, postgres)
    text = _compiled.get(key)
    if text is None:
        parts = sql.split("{}")
        if postgres:
            text = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        else:
            text = "?".join(parts)
        if len(_compiled) > 1000:  # a bound: the hot path has a few dozen texts
            _compiled.clear()
        _compiled[key] = text
    return text


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement (``{}`` placeholders) and return its rows as dicts."""
    return await fetch_all([(sql, args)])


async def fetch_all(parts: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Run several statements as one and return the rows of the last.

    PostgreSQL: one statement, all but the last as data-modifying ``WITH`` parts
    (INSERT/UPDATE/DELETE; each runs once, on one snapshot: they must not need to see
    each other's rows). SQLite: in order, in one hop to the connection's thread. One
    round trip instead of several, in the caller's transaction."""
    engine = current_engine()
    transaction = engine.current_transaction.get()
    if isinstance(engine, PostgresEngine):
        sql, args = _joined(parts)
        text = compile_sql(sql, postgres=True)
        if transaction is not None:
            rows = await transaction.connection.fetch(text, *args)
        elif engine.pool is not None:
            async with engine.pool.acquire() as connection:
                rows = await connection.fetch(text, *args)
        else:
            return list(await engine.run_querystring(_querystring(sql, args)))
        return [dict(row) for row in rows]
    batch = [(compile_sql(part, postgres=False), tuple(values)) for part, values in parts]
    if transaction is not None:
        return await _in_thread(transaction.connection, batch)
    if isinstance(engine, ReusingSQLiteEngine):
        connection = await engine._acquire()
        try:
            return await _in_thread(connection, batch)
        finally:
            await engine._release(connection)
    rows = []
    for part, values in parts:
        rows = list(await engine.run_querystring(_querystring(part, tuple(values))))
    return rows


def _joined(parts: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, tuple[Any, ...]]:
    """PostgreSQL: the parts as one statement (all but the last as ``WITH`` parts)."""
    if len(parts) == 1:
        sql, values = parts[-1]
        return sql, tuple(values)
    heads = ", ".join(f"s{i} AS ({sql})" for i, (sql, _) in enumerate(parts[:-1]))
    return f"WITH {heads} {parts[-1][0]}", tuple(v for _, values in parts for v in values)


async def _in_thread(
    connection: Any, batch: list[tuple[str, tuple[Any, ...]]]
) -> list[dict[str, Any]]:
    """aiosqlite hops to its thread three times per statement (execute, fetchall,
    close); ``_execute`` (its own private helper, aiosqlite pinned in pyproject.toml)
    runs the whole batch in one hop."""
    return list(await connection._execute(_run_batch, connection._conn, batch))


def _run_batch(
    conn: sqlite3.Connection, batch: list[tuple[str, tuple[Any, ...]]]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for sql, values in batch:
        cursor = conn.execute(sql, values)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
    return rows


def _querystring(sql: str, args: Sequence[Any]) -> Any:
    from piccolo.querystring import QueryString

    return QueryString(sql, *args)
