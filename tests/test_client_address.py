"""Per-address limits count the real client behind a trusted proxy (TRUSTED_PROXIES,
passed by ``python -m scheduler serve`` to uvicorn), ignore X-Forwarded-For from
anyone else, and count IPv6 clients by /64. Against a real server on loopback: the
"proxy" connects from 127.0.0.3 (trusted by the setting), the untrusted peer from
127.0.0.1 (which uvicorn's own default would have trusted)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from scheduler.domain.addresses import client_key
from tests.servers import running_server

LIMIT = 2  # requests per minute per address on endpoints that text
ENDPOINT = "/api/v1/appointments"  # counted before the body is read: {} is enough


async def _hits(client: httpx.AsyncClient, base: str, forwarded_for: str, n: int) -> list[int]:
    statuses = []
    for _ in range(n):
        resp = await client.post(
            base + ENDPOINT, json={}, headers={"X-Forwarded-For": forwarded_for}
        )
        statuses.append(resp.status_code)
    return statuses


async def _inside_one_window() -> None:
    """The limit counts in fixed minutes: start early in one so a test never straddles two."""
    into = time.time() % 60
    if into > 45:
        await asyncio.sleep(61 - into)


def _client(local_address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=local_address))


async def test_clients_behind_the_trusted_proxy_are_counted_apart(db: None, tmp_path: Path) -> None:
    env = {"TRUSTED_PROXIES": "127.0.0.3", "RATE_LIMIT_SMS_PER_MINUTE": str(LIMIT)}
    async with running_server(tmp_path / "server.log", env=env, serve=True) as server:
        await _inside_one_window()
        async with _client("127.0.0.3") as proxy, _client("127.0.0.1") as stranger:
            # Two couples behind the proxy: each has its own limit.
            assert await _hits(proxy, server.base, "203.0.113.7", LIMIT + 1) == [422, 422, 429]
            assert await _hits(proxy, server.base, "203.0.113.8", LIMIT) == [422, 422]
            # A proxy chain: the client is the address the trusted proxy saw.
            assert await _hits(proxy, server.base, "198.51.100.9, 203.0.113.8", 1) == [429]
            # IPv6: one /64 is one client, whatever address in it each request uses.
            first = await _hits(proxy, server.base, "2001:db8:1:2::1", LIMIT)
            same_64 = await _hits(proxy, server.base, "2001:db8:1:2:ffff::9", 1)
            other_64 = await _hits(proxy, server.base, "2001:db8:1:3::1", 1)
            assert (first, same_64, other_64) == ([422, 422], [429], [422])
            # An untrusted peer cannot choose its address: its X-Forwarded-For is ignored.
            spoofed = [(await _hits(stranger, server.base, f"192.0.2.{n}", 1))[0] for n in range(3)]
            assert spoofed == [422, 422, 429]


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("[2001:db8::1]", "2001:db8::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not-an-address", "not-an-address"),
        (None, "unknown"),
    ],
)
def test_client_key(host: str | None, key: str) -> None:
    assert client_key(host) == key
