"""The service survives a PostgreSQL restart in the middle of a load.

A real server (uvicorn subprocess) takes availability reads and bookings from
concurrent clients while the suite's own cluster is stopped and started again:
during the outage every request is answered quickly with 503 problem+json (no
hang, no 500), after the restart requests succeed again within seconds, and no
booking the clients were told about is lost or double-counted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.db.tables import Appointment
from tests.helpers import booking_body, make_office, open_slots
from tests.servers import running_server
from tests.test_caps_concurrency import assert_counters_consistent

CLIENTS = 8
RECOVERY_BOUND_SECONDS = 5.0
REQUEST_TIMEOUT = 10.0  # a hung request fails the test through httpx's timeout


@pytest.fixture
def cluster(db_kind: str) -> Any:
    if db_kind != "postgres":
        pytest.skip("SQLite is embedded: there is no database server to restart")
    from tests import conftest

    return conftest._cluster


async def _load(
    base: str, slots: list[dict[str, Any]], stop: asyncio.Event, log: list[tuple[float, str, Any]]
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT) as client:
        i = 0
        while not stop.is_set():
            i += 1
            if i % 2:
                resp = await client.get(
                    "/api/v1/offices/GZ-TH/availability", params={"service": "marriage"}
                )
            else:
                slot = slots[i % len(slots)]
                resp = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
            body = resp.json() if resp.content else {}
            log.append((time.monotonic(), str(resp.status_code), body.get("reference")))
            if resp.status_code == 503:
                assert resp.headers["content-type"].startswith("application/problem+json")
                assert resp.json()["type"].endswith("/service-unavailable")
                assert resp.headers["retry-after"] == "5"
            await asyncio.sleep(0.02)


async def test_requests_fail_fast_during_a_restart_and_recover(
    cluster: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await make_office(slot_cap=500, day_cap=5000, onsite_cap=5000)
    slots = (await open_slots(client))[:5]
    log: list[tuple[float, str, Any]] = []
    stop = asyncio.Event()
    async with running_server(tmp_path / "server.log") as server:
        loaders = [
            asyncio.create_task(_load(server.base, slots, stop, log)) for _ in range(CLIENTS)
        ]
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.stop)
        down_at = time.monotonic()
        await asyncio.sleep(2.0)
        up_at_before_start = time.monotonic()
        await asyncio.to_thread(cluster.start)
        up_at = time.monotonic()
        await asyncio.sleep(RECOVERY_BOUND_SECONDS + 1.0)
        stop.set()
        await asyncio.gather(*loaders)  # re-raises a client's failed assertion or timeout

    statuses = {status for _, status, _ in log}
    assert statuses <= {"200", "201", "503"}, statuses
    outage = [s for at, s, _ in log if down_at < at < up_at_before_start]
    assert outage and set(outage) == {"503"}, "every request during the outage answered 503"
    recovered = [at for at, s, _ in log if at > up_at and s in {"200", "201"}]
    assert recovered, "requests succeed again after the restart"
    first_ok = recovered[0] - up_at
    print(f"\nfirst success {first_ok:.2f} s after the cluster was back; {len(log)} requests")
    assert first_ok < RECOVERY_BOUND_SECONDS
    # Nothing after the first success fails again.
    assert not [s for at, s, _ in log if at > recovered[0] + 0.5 and s == "503"]

    # The test process's own pool recovers too, and no told booking is lost or doubled.
    for _ in range(20):
        try:
            stored = {r["reference"] for r in await Appointment.select(Appointment.reference)}
            break
        except Exception:  # dead pooled connections are replaced on retry
            await asyncio.sleep(0.25)
    told = {ref for _, status, ref in log if status == "201"}
    assert told <= stored
    assert len(told) == len(stored)
    await assert_counters_consistent()
