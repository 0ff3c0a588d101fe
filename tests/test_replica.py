"""Reads from a streaming replica (DATABASE_REPLICA_URL), tested for real: a second
PostgreSQL cluster follows the session's cluster (``pg_basebackup -R``), a real server
is started with both URLs, and what it answers shows where each read went.

Pausing WAL replay on the standby freezes what the replica can see: a booking made
meanwhile is missing from availability (read on the replica) but present when the
couple views it with their manage token (read on the primary)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import booking_body, make_office, open_slots
from tests.servers import running_server
from tests.support.pgcluster import Cluster, destroy_cluster, start_standby

# A booking must reach the replica within this; on loopback it takes milliseconds.
LAG_BOUND_SECONDS = 10.0


@pytest.fixture
async def standby(pg_cluster: Cluster, db: None) -> AsyncIterator[Cluster]:
    await make_office(slot_cap=3)
    replica = await asyncio.to_thread(start_standby, pg_cluster)
    try:
        yield replica
    finally:
        await asyncio.to_thread(destroy_cluster, replica)


@pytest.fixture
async def server(
    standby: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Path]]:
    monkeypatch.setenv("DATABASE_REPLICA_URL", standby.dsn("registry_test"))
    log = tmp_path / "server.log"
    async with running_server(log) as running:
        yield running.base, log


def _remaining(slots: list[dict[str, Any]], slot_id: int) -> int:
    return next(s["remaining"] for s in slots if s["id"] == slot_id)


async def _wait_caught_up(replica: Cluster, slot_id: int) -> None:
    """Until the replica has replayed the office and its slots."""
    deadline = time.monotonic() + LAG_BOUND_SECONDS
    while time.monotonic() < deadline:
        sql = f"SELECT count(*) FROM slot WHERE id = {int(slot_id)}"  # noqa: S608 - an int
        count = replica.psql(sql, "registry_test")
        if count == "1":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the standby never replayed the slots")


async def test_availability_reads_the_replica_and_sees_a_booking_within_the_lag(
    standby: Cluster, server: tuple[str, Path]
) -> None:
    base, _ = server
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        slot = (await open_slots(client))[0]
        await _wait_caught_up(standby, slot["id"])
        before = _remaining(await open_slots(client), slot["id"])

        standby.psql("SELECT pg_wal_replay_pause()")
        booked = await client.post(
            "/api/v1/appointments",
            json=booking_body(slot["id"]),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert booked.status_code == 201, booked.text
        reference = booked.json()["reference"]
        token = booked.json()["manage_token"]

        # The primary has the seat taken; the paused replica does not: availability
        # (a read that decides nothing) was answered by the replica...
        assert _remaining(await open_slots(client), slot["id"]) == before
        month = await client.get("/book/GZ-TH/marriage")
        assert month.status_code == 200
        # ...while the couple's own booking is read on the primary.
        view = await client.get(
            f"/api/v1/appointments/{reference}", headers={"X-Manage-Token": token}
        )
        assert view.status_code == 200, view.text

        standby.psql("SELECT pg_wal_replay_resume()")
        started = time.monotonic()
        while _remaining(await open_slots(client), slot["id"]) != before - 1:
            assert time.monotonic() - started < LAG_BOUND_SECONDS, "replica lag over bound"
            await asyncio.sleep(0.05)


async def test_a_stopped_replica_falls_back_to_the_primary_with_a_warning(
    standby: Cluster, server: tuple[str, Path]
) -> None:
    base, log = server
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        slot = (await open_slots(client))[0]
        await _wait_caught_up(standby, slot["id"])
        before = _remaining(await open_slots(client), slot["id"])
        await asyncio.to_thread(standby.stop)

        booked = await client.post(
            "/api/v1/appointments",
            json=booking_body(slot["id"]),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert booked.status_code == 201, booked.text
        # The replica is gone: the primary answers, with the booking in it.
        assert _remaining(await open_slots(client), slot["id"]) == before - 1
        assert (await client.get("/book/GZ-TH/marriage")).status_code == 200
    assert "replica unavailable, reading from the primary" in log.read_text()



def test_a_replica_needs_postgresql_on_both_sides() -> None:
    from scheduler.settings import SettingsError, parse_settings

    with pytest.raises(SettingsError, match="DATABASE_REPLICA_URL"):
        parse_settings({"DATABASE_REPLICA_URL": "postgresql://u@h/d"})  # SQLite primary
    with pytest.raises(SettingsError, match="DATABASE_REPLICA_URL"):
        parse_settings(
            {"DATABASE_URL": "postgresql://u@h/d", "DATABASE_REPLICA_URL": "sqlite:///x.db"}
        )
    both = {"DATABASE_URL": "postgresql://u@p/d", "DATABASE_REPLICA_URL": "postgresql://u@r/d"}
    # PostgreSQL needs a real secret and keys (tests/test_startup_checks.py).
    both |= {"SECRET_KEY": "x" * 40, "DATA_KEYS": "A" * 43}
    assert parse_settings(both).database_replica_url == "postgresql://u@r/d"
