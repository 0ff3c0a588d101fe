"""Couples refreshing a month view while the booking window opens.

For each database (a throwaway PostgreSQL cluster, a temporary SQLite file) this migrates,
seeds one office, and for each availability cache setting (``--cache``: 0 is the
baseline, every request computed; the default 2 is what ships) starts ``python -m
scheduler serve`` and drives, from N concurrent keep-alive connections, GETs of one
month of availability (JSON API, then the HTML month page) while ``--bookers``
other connections book over one day's slots (the spread rush). Half of the readers
revalidate as a browser does (``If-None-Match`` with the last ETag they saw). It prints
requests/s, p50/p99 and the 304 share of the readers, the bookings/s beside them,
and checks from the database that nothing was overbooked.

Run: .venv/bin/python bench/availability.py [--help]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    REPO,
    Db,
    Result,
    Server,
    bench_offices_toml,
    bench_slots,
    booking_request,
    check_caps,
    free_port,
    run_load,
    scheduler_cli,
    service_env,
)

TARGET = "API >= 1000 req/s, p99 < 25 ms at 16 clients, < 100 ms at 64 (bookings running)"


@dataclass
class Reads:
    statuses: Counter[int]
    latencies: list[float]
    wall: float

    def pct(self, q: float) -> float:
        return Result(self.statuses, self.latencies, self.wall, 0).pct(q)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    @property
    def share_304(self) -> float:
        return self.statuses[304] / max(len(self.latencies), 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/availability.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", choices=("both", "postgres", "sqlite"), default="both")
    p.add_argument("--clients", default="16,64", help="comma list of reader counts")
    p.add_argument("--bookers", type=int, default=16, help="booking connections (0: none)")
    p.add_argument("--cache", default="0,2", help="comma list of AVAILABILITY_CACHE_SECONDS")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    p.add_argument("--app-dir", type=Path, default=REPO, help="checkout the server runs from")
    return p.parse_args(argv)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, str | None]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    etag = None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"etag":
            etag = value.strip().decode()
    await reader.readexactly(length)
    return int(head[9:12]), etag


async def read_load(port: int, path: str, clients: int, duration: float) -> Reads:
    """``clients`` connections GET ``path`` back to back; every other one revalidates
    with the ETag it saw last, as a browser's refresh does."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker(revalidate: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        etag: str | None = None
        try:
            while time.perf_counter() < deadline:
                extra = f"If-None-Match: {etag}\r\n" if revalidate and etag else ""
                request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()
                started = time.perf_counter()
                status, seen = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                etag = seen or etag
        finally:
            writer.close()

    wall0 = time.perf_counter()
    await asyncio.gather(*(worker(i % 2 == 1) for i in range(clients)))
    return Reads(statuses, latencies, time.perf_counter() - wall0)


async def bench_database(kind: str, args: argparse.Namespace) -> bool:
    from tests.support.pgcluster import destroy_cluster, start_cluster

    tmp = Path(tempfile.mkdtemp(prefix=f"availability-{kind}-"))
    cluster = None
    ok = True
    try:
        if kind == "postgres":
            cluster = start_cluster()
            cluster.psql("CREATE DATABASE avail")
            url = cluster.dsn("avail")
        else:
            url = f"sqlite:///{tmp}/avail.sqlite3"
        env = service_env(url, free_port(), pool=10, log_level="WARNING")
        scheduler_cli(env, args.app_dir, "migrate")
        (tmp / "offices.toml").write_text(bench_offices_toml(100), encoding="utf-8")
        scheduler_cli(env, args.app_dir, "seed-demo", "--file", str(tmp / "offices.toml"))
        db = Db(url)
        days = list((await bench_slots(db)).values())
        start = datetime.now(UTC).date() + timedelta(days=2)
        month = f"from={start}&to={start + timedelta(days=29)}"
        api = f"/api/v1/offices/BENCH/availability?service=marriage&{month}"
        page = "/book/BENCH/marriage"
        couples = iter(range(10_000_000))
        day_index = 0
        print(f"\n{kind}: readers GET one month while {args.bookers} connections book")
        print(
            f"  {'cache':>5} {'what':<5} {'readers':>7} {'req/s':>8} {'p50 ms':>7}"
            f" {'p99 ms':>7} {'304':>5} {'5xx':>4} {'bookings/s':>10} {'server µs/req':>13}"
        )
        for seconds in [int(s) for s in args.cache.split(",")]:
            server_env = service_env(url, free_port(), pool=10, log_level="WARNING")
            server_env["AVAILABILITY_CACHE_SECONDS"] = str(seconds)
            server = Server(server_env, args.app_dir, tmp / f"server-{seconds}.log")
            try:
                await server.wait_ready()
                await read_load(server.port, api, 4, 1.0)  # warm-up
                for what, path in (("api", api), ("page", page)):
                    for clients in [int(c) for c in args.clients.split(",")]:
                        day_index += 1
                        slots = days[day_index % len(days)]
                        bookings = [
                            booking_request(server.port, slots[i % len(slots)]["id"], next(couples))
                            for i in range(20_000)
                        ]
                        booker = (
                            asyncio.create_task(
                                run_load(server.port, bookings, args.bookers, args.duration)
                            )
                            if args.bookers
                            else None
                        )
                        cpu0 = server.cpu_seconds()
                        reads = await read_load(server.port, path, clients, args.duration)
                        booked = await booker if booker else None
                        # Server CPU per answered request (bookings included when
                        # --bookers > 0): the figure machine noise moves least.
                        served = len(reads.latencies) + (len(booked.latencies) if booked else 0)
                        cpu_us = (server.cpu_seconds() - cpu0) / max(served, 1) * 1e6
                        errors = sum(n for s, n in reads.statuses.items() if s >= 500)
                        ok &= errors == 0
                        print(
                            f"  {seconds:>5} {what:<5} {clients:>7} {reads.rps:>8.0f}"
                            f" {reads.pct(0.5):>7.1f} {reads.pct(0.99):>7.1f}"
                            f" {reads.share_304:>5.0%} {errors:>4}"
                            f" {booked.statuses[201] / booked.wall if booked else 0:>10.0f}"
                            f" {cpu_us:>13.0f}"
                        )
            finally:
                server.stop()
        checks = await check_caps(db)
        over = sum(len(c.failures) for c in checks.values())
        ok &= over == 0
        print(f"  overbooking (slot, office_day, onsite_window): {over}")
    finally:
        if cluster is not None:
            destroy_cluster(cluster)
        shutil.rmtree(tmp, ignore_errors=True)
    return ok


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    print(f"target: {TARGET}")
    kinds = ("postgres", "sqlite") if args.db == "both" else (args.db,)
    ok = True
    for kind in kinds:
        ok &= await bench_database(kind, args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
