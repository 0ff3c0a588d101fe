"""Live updates for display boards: a change publishes a tick on the office's
channel; every open board stream re-reads the state from the database.

Publishing only a tick (not the state) keeps the database the single source of
truth: a board that missed messages, or reconnected after a restart, shows the
right state with its next read. On PostgreSQL the tick is a NOTIFY sent in the
change's own transaction and heard by every process (``live_pg``); on SQLite, the
single-process embedded mode, it is published in memory after the commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response.sse import ServerSentEventMessage
from piccolo.engine.postgres import PostgresEngine

from scheduler.db.engine import current_engine, write_transaction
from scheduler.notify.live_pg import PgListenChannelsBackend, notify
from scheduler.settings import Settings

log = logging.getLogger("scheduler.live")
HEARTBEAT_SECONDS = 15.0
RECONNECT_MS = 2000

_plugin: ChannelsPlugin | None = None


def make_plugin(settings: Settings) -> ChannelsPlugin:
    """LISTEN/NOTIFY on PostgreSQL (boards of every process hear every change);
    in memory on SQLite, which runs one process."""
    global _plugin
    if settings.is_sqlite:
        backend: ChannelsBackend = MemoryChannelsBackend()
    else:
        dsn = settings.database_url.replace("postgres://", "postgresql://", 1)
        backend = PgListenChannelsBackend(dsn)
    _plugin = ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True)
    return _plugin


def board_channel(office_id: int) -> str:
    return f"board:{office_id}"


@asynccontextmanager
async def board_change(office_id: int) -> AsyncIterator[None]:
    """``write_transaction()`` for a change that ``office_id``'s boards show.

    PostgreSQL: NOTIFY as the transaction's last statement, so the tick is delivered
    at COMMIT, to every process, and never for a rolled-back change, and even if
    this process dies right after committing. SQLite: an in-memory tick after
    COMMIT (a tick before it could make a board re-read the old state)."""
    async with write_transaction():
        yield
        if isinstance(current_engine(), PostgresEngine):
            await notify(board_channel(office_id), json.dumps({"office": office_id}))
    if not isinstance(current_engine(), PostgresEngine):
        notify_board(office_id)


def notify_board(office_id: int) -> None:
    """Tell this process's boards of ``office_id`` to refresh (after commit)."""
    if _plugin is None:
        return
    try:
        _plugin.publish({"office": office_id}, board_channel(office_id))
    except RuntimeError:
        # Channels not started (a CLI or worker process without the web lifespan).
        log.debug("board update for office %s not published: channels not running", office_id)


def _message(state: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=json.dumps(state, ensure_ascii=False), event="board", retry=RECONNECT_MS
    )


async def board_stream(
    office_id: int,
    channels: ChannelsPlugin,
    read_state: Callable[[], Awaitable[dict[str, Any]]],
    *,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[ServerSentEventMessage]:
    """The board's state now, then again after every change and every heartbeat."""
    ticks: asyncio.Queue[bytes] = asyncio.Queue()
    async with (
        channels.start_subscription([board_channel(office_id)]) as subscriber,
        subscriber.run_in_background(ticks.put, join=False),
    ):
        yield _message(await read_state())
        while True:
            try:
                await asyncio.wait_for(ticks.get(), timeout=heartbeat)
                while not ticks.empty():  # a burst of calls is one refresh
                    ticks.get_nowait()
            except TimeoutError:
                pass
            yield _message(await read_state())
