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

from typing import Any

from piccolo.engine.postgres import PostgresEngine

from scheduler.db.engine import ReusingSQLiteEngine, current_engine

_compiled: dict[tuple[str, bool], str] = {}


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
        _compiled[key] = text
    return text


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement (``{}`` placeholders) and return its rows as dicts."""
    engine = current_engine()
    transaction = engine.current_transaction.get()
    if isinstance(engine, PostgresEngine):
        text = compile_sql(sql, postgres=True)
        if transaction is not None:
            rows = await transaction.connection.fetch(text, *args)
        elif engine.pool is not None:
            async with engine.pool.acquire() as connection:
                rows = await connection.fetch(text, *args)
        else:
            return list(await engine.run_querystring(_querystring(sql, args)))
        return [dict(row) for row in rows]
    text = compile_sql(sql, postgres=False)
    if transaction is not None:
        async with transaction.connection.execute(text, args) as cursor:
            return list(await cursor.fetchall())
    if isinstance(engine, ReusingSQLiteEngine):
        return list(await engine._run_in_new_connection(text, list(args)))
    return list(await engine.run_querystring(_querystring(sql, args)))


def _querystring(sql: str, args: tuple[Any, ...]) -> Any:
    from piccolo.querystring import QueryString

    return QueryString(sql, *args)
