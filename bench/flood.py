"""Flood benchmark (issue 7.4): one address floods the booking endpoint while another
asks for availability; the per-address limit must answer the flood with 429 quickly
and the other client must stay served (target: its p99 under 100 ms).

Starts ``python -m scheduler serve`` (uvicorn, one worker) on a fresh SQLite file with
the per-IP limit ON (RATE_LIMIT_SMS_PER_MINUTE=20, the default): unlike bench/rush.py
this benchmark is about the limit. The flood comes from 127.0.0.1 over keep-alive
connections; the probe from 127.0.0.2 (Linux routes all of 127/8 to loopback), one
request at a time, with and without the flood.

    .venv/bin/python bench/flood.py [--requests 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from _common import (
    REPO,
    Server,
    _exchange,
    bench_offices_toml,
    free_port,
    scheduler_cli,
    service_env,
)

LIMIT = 20


def flood_request(port: int) -> bytes:
    # An empty body: the limit answers before the body is read; admitted ones get 422.
    return (
        f"POST /api/v1/appointments HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()


def probe_request(port: int) -> bytes:
    day = (date.today() + timedelta(days=3)).isoformat()
    return (
        f"GET /api/v1/offices/BENCH/availability?service=marriage&from={day}&to={day}"
        f" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    ).encode()


async def probe(port: int, stop: asyncio.Event, pause: float) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
    request, latencies = probe_request(port), []
    try:
        while not stop.is_set():
            started = time.perf_counter()
            status, _, _ = await _exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            assert status == 200, status
            await asyncio.sleep(pause)
    finally:
        writer.close()
    return latencies


async def flood(
    port: int, total: int, concurrency: int, seconds: float
) -> tuple[Counter[int], float]:
    """``total`` requests spread evenly over ``seconds`` (0: as fast as they go)."""
    request, statuses = flood_request(port), Counter[int]()
    left = iter(range(total))
    began = time.perf_counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in left:
            wait = began + n * seconds / total - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            status, _, close = await _exchange(reader, writer, request)
            statuses[status] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, time.perf_counter() - started


def summary(label: str, latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p99 = statistics.quantiles(ms, n=100)[98] if len(ms) >= 100 else ms[-1]
    return (
        f"{label}: {len(ms)} requests, median {statistics.median(ms):.1f} ms,"
        f" p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
    )


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--pause", type=float, default=0.005, help="probe pause between requests")
    p.add_argument(
        "--seconds",
        type=float,
        nargs="+",
        default=[3.0, 0.0],
        help="spread the flood over this long (issue 7: 'in a few seconds'); 0: unpaced",
    )
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="flood-"))
    env = service_env(f"sqlite:///{tmp}/flood.sqlite3", free_port(), pool=4, log_level="WARNING")
    env["RATE_LIMIT_SMS_PER_MINUTE"] = str(LIMIT)  # ON: this benchmark measures the limit
    print(f"Per-IP rate limit is ON for this run (RATE_LIMIT_SMS_PER_MINUTE={LIMIT}).")
    scheduler_cli(env, REPO, "migrate")
    (tmp / "offices.toml").write_text(bench_offices_toml(100), encoding="utf-8")
    scheduler_cli(env, REPO, "seed-demo", "--file", str(tmp / "offices.toml"))
    server = Server(env, REPO, tmp / "server.log")
    try:
        await server.wait_ready()
        port = server.port
        stop = asyncio.Event()
        quiet = asyncio.create_task(probe(port, stop, args.pause))
        await asyncio.sleep(3)
        stop.set()
        baseline = await quiet

        print(summary("availability from 127.0.0.2, no flood", baseline))
        for seconds in args.seconds:
            await asyncio.sleep(61 - time.time() % 60)  # a fresh window for each flood
            stop = asyncio.Event()
            during = asyncio.create_task(probe(port, stop, args.pause))
            cpu0 = server.cpu_seconds()
            statuses, wall = await flood(port, args.requests, args.concurrency, seconds)
            cpu = server.cpu_seconds() - cpu0
            stop.set()
            loaded = await during
            print(
                f"flood from 127.0.0.1 ({'paced' if seconds else 'unpaced'}): {args.requests}"
                f" requests over {args.concurrency} connections in {wall:.2f} s"
                f" ({args.requests / wall:.0f} req/s); statuses {dict(statuses)};"
                f" server CPU {cpu / args.requests * 1e6:.0f} us/request"
            )
            print(summary("  availability from 127.0.0.2 during it", loaded))
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
