"""Display-board ticks across processes: a Litestar channels backend on PostgreSQL
LISTEN/NOTIFY.

Litestar ships ``AsyncPgChannelsBackend``, but it opens a new connection for every
publish and never notices that its listening connection died (a PostgreSQL restart,
a failover, an idle-connection killer): boards would then stay silent until they
reconnect by themselves. This backend keeps one dedicated listening connection per
process (not a pooled one: the pool skips asyncpg's reset, so a LISTEN must not be
left on a pooled connection), watches it (termination callback plus a periodic
ping), reconnects with backoff, LISTENs again and then ticks every subscribed
channel, because notifications sent while nobody listened are lost. A tick only
makes each board re-read its state from the database, so an extra one is harmless.

Notifications are sent with ``pg_notify`` on the writer's own transaction
(``notify``): PostgreSQL delivers them at COMMIT and drops them on ROLLBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import asyncpg
from litestar.channels.backends.base import ChannelsBackend

log = logging.getLogger("scheduler.live")

# Seen in pg_stat_activity: operators (and tests) can tell the listeners apart.
APPLICATION_NAME = "scheduler-listen"
PING_SECONDS = 10.0
PING_TIMEOUT = 5.0
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
RECONNECTED = json.dumps({"reconnected": True}).encode()


async def notify(channel: str, payload: str) -> None:
    """NOTIFY on the current transaction's connection (or a pooled one outside a
    transaction): delivered to every listening process when that transaction commits."""
    from scheduler.db.tables import Office

    await Office.raw("SELECT pg_notify({}, {})", channel, payload)


class PgListenChannelsBackend(ChannelsBackend):
    """LISTEN on one dedicated asyncpg connection that is kept alive and re-made."""

    def __init__(
        self,
        dsn: str,
        *,
        ping_seconds: float = PING_SECONDS,
        retry_seconds: float = RETRY_FIRST_SECONDS,
    ) -> None:
        self._dsn = dsn
        self._ping_seconds = ping_seconds
        self._retry_seconds = retry_seconds
        self._channels: set[str] = set()
        self._conn: asyncpg.Connection | None = None
        self._queue: asyncio.Queue[tuple[str, bytes]] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # Set while a listening connection is up (tests and health checks wait on it).
        self.listening = asyncio.Event()
        self.connections_made = 0

    async def on_startup(self) -> None:
        self._queue = asyncio.Queue()
        self._lock = asyncio.Lock()  # bound to the serving loop, not the importing one
        self.listening = asyncio.Event()
        self._task = asyncio.create_task(self._keep_listening(), name="pg-listen")

    async def on_shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._channels.clear()
        self._queue = None

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        # Called by ChannelsPlugin.publish (after a commit); the board code itself
        # notifies inside its transaction. An error here must not stop the
        # plugin's publishing task: boards re-read on their heartbeat anyway.
        try:
            for channel in channels:
                await notify(channel, data.decode())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("board tick not sent", exc_info=True)

    async def subscribe(self, channels: Iterable[str]) -> None:
        new = set(channels) - self._channels
        self._channels |= new
        async with self._lock:
            if self._conn is None:
                return  # _keep_listening LISTENs to every channel when it connects
            try:
                for channel in new:
                    await self._conn.add_listener(channel, self._on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("LISTEN failed; reconnecting", exc_info=True)
                self._conn.terminate()  # fires the termination callback

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = set(channels) & self._channels
        self._channels -= gone
        async with self._lock:
            if self._conn is None:
                return
            try:
                for channel in gone:
                    await self._conn.remove_listener(channel, self._on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("UNLISTEN failed; reconnecting", exc_info=True)
                self._conn.terminate()

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        if self._queue is None:
            raise RuntimeError("backend not started")
        queue = self._queue
        while True:
            channel, message = await queue.get()
            queue.task_done()
            if channel in self._channels:  # an UNLISTEN may have crossed it
                yield channel, message

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        return []  # boards read their state from the database, not from history

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: Any) -> None:
        if self._queue is not None:
            self._queue.put_nowait((channel, str(payload).encode()))

    async def _keep_listening(self) -> None:
        delay = self._retry_seconds
        while True:
            made = self.connections_made
            try:
                await self._listen_until_lost()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("board listener: %r; reconnecting in %.1f s", exc, delay)
            if self.connections_made > made:
                delay = self._retry_seconds  # it was up: start the backoff afresh
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _listen_until_lost(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn, timeout=PING_TIMEOUT, server_settings={"application_name": APPLICATION_NAME}
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        try:
            async with self._lock:
                for channel in self._channels:
                    await conn.add_listener(channel, self._on_notify)
                self._conn = conn
            self.connections_made += 1
            self.listening.set()
            if self.connections_made > 1:
                log.info("board listener reconnected")
            # Whatever was notified while nobody listened is lost: every board re-reads.
            for channel in self._channels:
                self._on_notify(conn, 0, channel, RECONNECTED.decode())
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), self._ping_seconds)
                except TimeoutError:
                    # A silently dead peer (no FIN, no RST) is only found by asking.
                    async with self._lock:
                        await conn.execute("SELECT 1", timeout=PING_TIMEOUT)
            log.warning("board listener: connection lost")
        finally:
            self.listening.clear()
            self._conn = None
            if lost.is_set():
                conn.terminate()
            else:  # shutting down, or the ping failed: say goodbye if the server still listens
                try:
                    await asyncio.wait_for(conn.close(), PING_TIMEOUT)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    conn.terminate()
