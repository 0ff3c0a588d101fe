"""The PostgreSQL board listener (scheduler/notify/live_pg.py) survives losing its
connection: PostgreSQL kills the listening backend (as a restart or an
idle-connection killer would); the listener reconnects by itself, ticks every
board so it re-reads what it may have missed, and hears later changes again.
Changes notify at COMMIT, from the queue use cases' own transactions.

POSTGRESQL ONLY: SQLite is the single-process embedded mode with in-memory ticks
(skipped there with that reason).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.channels import ChannelsPlugin

from scheduler.db.audit import NamedActor
from scheduler.db.tables import Office
from scheduler.kernel.clock import utcnow
from scheduler.notify.live import board_channel
from scheduler.notify.live_pg import APPLICATION_NAME, PgListenChannelsBackend
from scheduler.settings import get_settings
from scheduler.usecases.desk import queue
from tests.helpers import make_office
from tests.test_desk_pages import confirmed_today

WAIT = 20.0  # a hang guard, not a timing assert
CLERK = NamedActor("listener.clerk")


@pytest.fixture
async def listener(db_kind: str, db: None) -> AsyncIterator[PgListenChannelsBackend]:
    if db_kind != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's: SQLite is the single-process embedded mode")
    backend = PgListenChannelsBackend(os.environ["DATABASE_URL"], retry_seconds=0.1)
    async with ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True) as plugin:
        backend.plugin = plugin  # type: ignore[attr-defined]
        yield backend


async def _next(ticks: asyncio.Queue[bytes]) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ticks.get(), WAIT)))


async def test_board_ticks_survive_the_listening_connection_being_killed(
    listener: PgListenChannelsBackend,
) -> None:
    office_id = await make_office(code="GZ-TH", days_ahead=3)
    (couple,) = await confirmed_today(count=1)
    plugin: ChannelsPlugin = listener.plugin  # type: ignore[attr-defined]
    ticks: asyncio.Queue[bytes] = asyncio.Queue()
    async with (
        plugin.start_subscription([board_channel(office_id)]) as subscriber,
        subscriber.run_in_background(ticks.put, join=False),
    ):
        await asyncio.wait_for(listener.listening.wait(), WAIT)

        ref = couple["reference"]
        cmd = queue.CheckIn(office_id, reference=ref, parties_present=frozenset("ab"))
        await queue.check_in(cmd, now=utcnow(), settings=get_settings(), actor=CLERK)
        assert await _next(ticks) == {"office": office_id}

        # PostgreSQL ends the listening backend.
        killed = await Office.raw(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity"
            " WHERE application_name = {}",
            APPLICATION_NAME,
        )
        assert [k["done"] for k in killed] == [True]
        # Back on a new connection: every board is told to re-read.
        assert await _next(ticks) == {"reconnected": True}
        assert listener.connections_made == 2

        await queue.call_next(office_id, "2", now=utcnow(), actor=CLERK, settings=get_settings())
        assert await _next(ticks) == {"office": office_id}
