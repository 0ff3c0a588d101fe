"""Live updates for display boards: a change publishes a tick on the office's
channel; every open board stream re-reads the state from the database.

Publishing only a tick (not the state) keeps the database the single source of
truth: a board that missed messages, or reconnected after a restart, shows the
right state with its next read. The channels backend is in-memory within one
process; the production issue swaps in PostgreSQL LISTEN/NOTIFY across processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response.sse import ServerSentEventMessage

log = logging.getLogger("scheduler.live")
HEARTBEAT_SECONDS = 15.0
RECONNECT_MS = 2000

_plugin: ChannelsPlugin | None = None


def make_plugin() -> ChannelsPlugin:
    global _plugin
    _plugin = ChannelsPlugin(backend=MemoryChannelsBackend(), arbitrary_channels_allowed=True)
    return _plugin


def board_channel(office_id: int) -> str:
    return f"board:{office_id}"


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

