"""Reads that may be served by a streaming replica (``DATABASE_REPLICA_URL``).

Only reads that decide nothing go there: availability and month views, reports and the
audit log. They are marked with ``@replica_read``; everything else, and every query inside
a transaction, runs on the primary, because the caps are kept there by conditional
UPDATEs. A replica that does not answer is skipped for ``RETRY_AFTER`` seconds with one
logged warning, and its reads go to the primary: a stale or stopped replica costs
freshness (a seat that looks free is refused with 409 at booking), never an answer.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import asyncpg
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

log = logging.getLogger("scheduler.db.replica")

RETRY_AFTER = 5.0
# asyncpg waits 60 s for a connection by default; a replica that does not answer
# within this must not hold a couple's month view.
CONNECT_TIMEOUT = 2.0
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
)

_reading: ContextVar[bool] = ContextVar("replica_reads", default=False)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def replica_reads() -> Iterator[None]:
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def replica_read(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Mark a read-only use case whose queries the replica may answer."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with replica_reads():
            return await fn(*args, **kwargs)

    return wrapper


class PrimaryWithReplica(PostgresEngine):
    """The primary's engine; marked reads outside a transaction go to ``replica``."""

    def __init__(self, config: dict[str, Any], replica_dsn: str) -> None:
        super().__init__(config=config)
        self.replica = PostgresEngine(config={"dsn": replica_dsn})
        self._down_until = 0.0

    @property
    def replica_usable(self) -> bool:
        return self.replica.pool is not None and time.monotonic() >= self._down_until

    async def start_connection_pool(self, **kwargs: Any) -> None:
        await super().start_connection_pool(**kwargs)
        # min_size=0: a replica that is down at start-up must not stop the service.
        replica_kwargs = kwargs | {"min_size": 0, "timeout": CONNECT_TIMEOUT}
        await self.replica.start_connection_pool(**replica_kwargs)

    async def close_connection_pool(self) -> None:
        await super().close_connection_pool()
        if self.replica.pool is not None:
            await self.replica.close_connection_pool()

    async def run_querystring(self, querystring: QueryString, in_pool: bool = True) -> Any:
        if _reading.get() and self.current_transaction.get() is None and self.replica_usable:
            try:
                return await self.replica.run_querystring(querystring, in_pool=in_pool)
            except _UNREACHABLE as exc:
                self._down_until = time.monotonic() + RETRY_AFTER
                log.warning(
                    "replica unavailable, reading from the primary for %.0f s: %s",
                    RETRY_AFTER,
                    type(exc).__name__,
                )
        return await super().run_querystring(querystring, in_pool=in_pool)
