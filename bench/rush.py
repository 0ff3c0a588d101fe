"""Rush hour: many couples booking at once against a running server.

For each database (a throwaway PostgreSQL cluster, a temporary SQLite file) this
migrates, seeds one office, starts ``python -m scheduler serve`` (uvicorn, one worker;
``--processes 1,2,3``: that many separate web processes on their own ports, the
client's connections dealt round-robin over them as a load balancer would; PostgreSQL
only) and drives POST /api/v1/appointments from N concurrent keep-alive connections:

  hot     every request targets one slot (capacity --capacity)
  spread  requests round-robin over all slots of one day

then runs the same booking transaction as raw SQL at the same concurrency (the
ceiling), checks from the database that nothing was overbooked, and prints the
figures next to the targets. Run: .venv/bin/python bench/rush.py [--help]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    machine_busy,
    postgres_cpu,
    run_load,
    run_load_httpx,
    scheduler_cli,
    service_env,
)
from _raw import raw_postgres, raw_sqlite

# Issue 16's targets (2 cores, 64 clients).
TARGETS = {
    "overbooking": "0 always (slot, office_day, onsite_window, share, waiting)",
    "postgres": "hot >= 600 req/s, spread >= 1000 req/s, p99 < 250 ms; service/raw >= 0.35",
    "sqlite": "hot >= 400 req/s, spread >= 300 req/s, 0 'database is locked', 0 5xx",
}
PG_RPS = {"hot": 600, "spread": 1000}
SQLITE_RPS = {"hot": 400, "spread": 300}
PG_P99_MS, RATIO = 250, 0.35
LOCKED = "database is locked"


@dataclass
class Line:
    db: str
    scenario: str
    service: Result
    raw: Result | None = None
    cpu: dict[str, float] = field(default_factory=dict)  # seconds per request
    planned: int = 0
    processes: int = 1

    @property
    def ratio(self) -> float | None:
        return self.service.rps / self.raw.rps if self.raw and self.raw.rps else None


@dataclass
class Report:
    db: str
    lines: list[Line] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    locked: int = 0
    tracebacks: int = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/rush.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", choices=("both", "postgres", "sqlite"), default="both")
    p.add_argument("--scenarios", default="hot,spread", help="comma list of hot, spread")
    p.add_argument("-c", "--concurrency", type=int, default=64, help="concurrent clients")
    p.add_argument("-n", "--requests", type=int, default=5000, help="requests per scenario")
    p.add_argument("--duration", type=float, help="seconds per scenario instead of --requests")
    p.add_argument(
        "--time-limit",
        type=float,
        default=40,
        help="stop a scenario after this many seconds even if requests remain",
    )
    p.add_argument("--capacity", type=int, default=100, help="seats per slot")
    p.add_argument(
        "--processes",
        default="1",
        help="comma list of web process counts to run in turn, e.g. 1,2,3 (PostgreSQL;"
        " SQLite runs one)",
    )
    p.add_argument(
        "--db-pool",
        type=int,
        default=10,
        help="server DB_POOL_MIN/MAX and the raw pool (service default 10)",
    )
    p.add_argument("--log-level", default="INFO", help="server LOG_LEVEL (INFO logs each request)")
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: asyncio streams + prebuilt requests (lean); httpx: AsyncClient",
    )
    p.add_argument("--no-raw", action="store_true", help="skip the raw-SQL ceiling")
    p.add_argument(
        "--raw-counters",
        choices=("first", "last"),
        default="first",
        help="raw SQL: take the seat counters first (as the service) or last",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the server during each scenario; collapsed stacks into DIR",
    )
    p.add_argument(
        "--app-dir",
        type=Path,
        default=REPO,
        help="checkout the server runs from (A/B a patched copy)",
    )
    p.add_argument("--keep", action="store_true", help="keep temp dirs (server log, database)")
    p.add_argument(
        "--pg-stat",
        type=int,
        default=0,
        metavar="N",
        help="PostgreSQL: load pg_stat_statements and print the N statements that took the"
        " most database time in each scenario",
    )
    return p.parse_args(argv)


async def bench_database(kind: str, args: argparse.Namespace) -> Report:
    from tests.support.pgcluster import destroy_cluster, start_cluster

    tmp = Path(tempfile.mkdtemp(prefix=f"rush-{kind}-"))
    cluster = None
    report = Report(kind)
    try:
        if kind == "postgres":
            extra = "-c shared_preload_libraries=pg_stat_statements" if args.pg_stat else ""
            cluster = start_cluster(extra)
            cluster.psql("CREATE DATABASE rush")
            if args.pg_stat:
                cluster.psql("CREATE EXTENSION pg_stat_statements", "rush")
            url = cluster.dsn("rush")
        else:
            url = f"sqlite:///{tmp}/rush.sqlite3"
        env = service_env(url, free_port(), pool=args.db_pool, log_level=args.log_level)
        scheduler_cli(env, args.app_dir, "migrate")
        (tmp / "offices.toml").write_text(bench_offices_toml(args.capacity), encoding="utf-8")
        scheduler_cli(env, args.app_dir, "seed-demo", "--file", str(tmp / "offices.toml"))
        db = Db(url)
        days = list((await bench_slots(db)).values())
        counts = process_counts(kind, args)
        # Fresh slots for every process count, and others for the raw-SQL ceiling.
        plans = {
            n: {"hot": days[1 + 2 * i][:1], "spread": days[2 + 2 * i]} for i, n in enumerate(counts)
        }
        raw_day = 1 + 2 * len(counts)
        raw_plan = {"hot": days[raw_day][:1], "spread": days[raw_day + 1]}
        couples = iter(range(10_000_000))  # couple n = people 2n, 2n+1: never reused

        def jobs(slots: list[dict[str, Any]], count: int) -> list[tuple[int, dict[str, Any]]]:
            return [(next(couples), slots[i % len(slots)]) for i in range(count)]

        servers: list[Server] = []
        for n in counts:
            started = start_servers(n, url, tmp, args)
            servers += started
            try:
                for server in started:
                    await server.wait_ready()
                ports = [server.port for server in started]
                warmup = [booking_request(ports[0], s["id"], c) for c, s in jobs(days[0], 300)]
                await run_load(ports, warmup, args.concurrency)
                for name in args.scenarios.split(","):
                    slots = plans[n][name]
                    count = args.requests if not args.duration else 2000 * int(args.duration + 1)
                    requests = [
                        booking_request(ports[0], s["id"], c) for c, s in jobs(slots, count)
                    ]
                    line = await run_scenario(kind, name, started, requests, cluster, args)
                    report.lines.append(line)
                    print_line(line, args.concurrency)
            finally:
                for server in started:
                    server.stop()
        if not args.no_raw:
            for line in report.lines:
                if line.processes != counts[0]:
                    continue  # one ceiling per scenario
                count = line.service.count
                work = jobs(raw_plan[line.scenario], count)
                last = args.raw_counters == "last"
                if kind == "postgres":
                    line.raw = await raw_postgres(url, work, args.concurrency, args.db_pool, last)
                else:
                    line.raw = await raw_sqlite(db.path, work, args.concurrency, last)
                print_raw(line)
        report.checks = await check_caps(db)
        log = "".join(server.log_text() for server in servers)
        report.locked = log.count(LOCKED)
        report.tracebacks = log.count("Traceback (most recent call last)")
        print_checks(report, servers[0].log_path.parent)
    finally:
        if cluster is not None:
            destroy_cluster(cluster)
        if args.keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return report


def process_counts(kind: str, args: argparse.Namespace) -> list[int]:
    counts = [int(n) for n in args.processes.split(",")]
    if args.client == "httpx" and max(counts) > 1:
        raise SystemExit("--client httpx drives one process: use the raw client with --processes")
    if kind == "sqlite" and counts != [1]:
        print("  SQLite is the single-process embedded mode: one web process only")
        return [1]
    return counts


def start_servers(count: int, url: str, tmp: Path, args: argparse.Namespace) -> list[Server]:
    """``count`` separate ``serve`` processes, each with its own port and pool."""
    return [
        Server(
            service_env(url, free_port(), pool=args.db_pool, log_level=args.log_level),
            args.app_dir,
            tmp / f"server-{count}-{i + 1}.log",
        )
        for i in range(count)
    ]


async def run_scenario(
    kind: str,
    name: str,
    servers: list[Server],
    requests: list[bytes],
    cluster: Any,
    args: argparse.Namespace,
) -> Line:
    server = servers[0]
    profile_to = args.profile / f"{kind}-{len(servers)}-{name}.txt" if args.profile else None
    profiler = start_profiler(server, profile_to) if profile_to else None
    db_cpu = (lambda: postgres_cpu(cluster.data)) if cluster else (lambda: 0.0)

    def servers_cpu() -> float:
        return sum(s.cpu_seconds() for s in servers)

    if cluster and args.pg_stat:
        cluster.psql("SELECT pg_stat_statements_reset()", "rush")
    server0, db0, busy0 = servers_cpu(), db_cpu(), machine_busy()
    ports = [s.port for s in servers]
    if args.client == "raw":
        result = await run_load(ports, requests, args.concurrency, args.duration or args.time_limit)
    else:
        result = await run_load_httpx(
            server.port, requests, args.concurrency, args.duration or args.time_limit
        )
    cpu = {
        "server": servers_cpu() - server0,
        "db": db_cpu() - db0,
        "client": result.client_cpu,
    }
    cpu["others"] = max(machine_busy() - busy0 - sum(cpu.values()), 0.0)
    if profiler is not None and profile_to is not None:
        stop_profiler(profiler, profile_to)
    per_request = {k: v / max(result.count, 1) for k, v in cpu.items()}
    if cluster and args.pg_stat:
        print_statements(cluster, args.pg_stat, result.count)
    planned = 0 if args.duration else len(requests)
    return Line(kind, name, result, cpu=per_request, planned=planned, processes=len(servers))


def print_statements(cluster: Any, top: int, requests: int) -> None:
    """The statements that took the most database time: calls and µs per request."""
    rows = cluster.psql(
        "SELECT calls, round(total_exec_time::numeric * 1000), left(regexp_replace(query,"  # noqa: S608 - an int
        " '\\s+', ' ', 'g'), 110) FROM pg_stat_statements WHERE query NOT LIKE"
        f" '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT {int(top)}",
        "rush",
    )
    print("          statements by database time (calls/request, µs/request):")
    for line in rows.splitlines():
        calls, micros, query = line.split("|", 2)
        per = max(requests, 1)
        print(f"          {int(calls) / per:5.2f} {int(micros) / per:7.0f}  {query}")


# ---------------------------------------------------------------- py-spy


def start_profiler(server: Server, out: Path) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    proc = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.proc.pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach before the load starts
    return proc


def stop_profiler(proc: subprocess.Popen[bytes], out: Path, top: int = 18) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for f in set(frames):
            if "scheduler/" in f or "piccolo/" in f or "asyncpg/" in f:
                inclusive[f] += int(count)
    print(f"    py-spy: {total} samples -> {out}")
    print("    self time (top frames):")
    for frame, n in own.most_common(top):
        print(f"      {100 * n / total:5.1f}%  {frame}")
    print("    inclusive time (scheduler/, piccolo/, asyncpg/):")
    for frame, n in inclusive.most_common(top):
        print(f"      {100 * n / total:5.1f}%  {frame}")


def _frame(raw: str) -> str:
    """'func (path/to/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py)'."""
    name, _, where = raw.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", str(REPO) + "/"):
        where = where.split(marker, 1)[-1]
    return f"{name} ({where})"


# ---------------------------------------------------------------- output


def print_line(line: Line, concurrency: int) -> None:
    r = line.service
    cpu = "  ".join(f"{k} {v * 1e6:.0f}" for k, v in line.cpu.items() if k != "others")
    others = line.cpu["others"] * r.count / r.wall if r.wall else 0.0
    print(
        f"  {line.scenario:<7} service x{line.processes} {r.rps:7.1f} req/s"
        f"  p50 {r.pct(0.5):6.1f} ms"
        f"  p99 {r.pct(0.99):6.1f} ms  201={r.statuses[201]} 409={r.statuses[409]}"
        f" other={r.other} (5xx={r.errors_5xx})  [{r.count} req, {concurrency} clients,"
        f" {r.wall:.1f} s{', time limit' if r.count < line.planned else ''}]"
        f"\n          CPU us/request: {cpu}  => the server processes saturate one core at"
        f" {1 / line.cpu['server'] if line.cpu['server'] else 0:.0f} req/s"
        f"\n          (other processes used {others:.2f} of {os.cpu_count()} cores meanwhile)"
    )


def print_raw(line: Line) -> None:
    r = line.raw
    assert r is not None
    print(
        f"  {line.scenario:<7} raw SQL {r.rps:7.1f} req/s  p50 {r.pct(0.5):6.1f} ms"
        f"  p99 {r.pct(0.99):6.1f} ms  201={r.statuses[201]} 409={r.statuses[409]}"
        f" other={r.other}   service/raw = {line.ratio:.2f} (target >= {RATIO})"
    )


def print_checks(report: Report, log_path: Path) -> None:
    for kind, check in report.checks.items():
        verdict = "OK" if not check.failures else "FAIL"
        print(f"  overbooking check {kind:<13} {verdict}  ({check.rows} rows)")
        for failure in check.failures[:5]:
            print(f"      {failure}")
    print(
        f"  server logs in {log_path}: {report.locked} x '{LOCKED}', {report.tracebacks} tracebacks"
    )


def print_scaling(report: Report) -> None:
    """Throughput by number of web processes, side by side with the raw-SQL ceiling."""
    counts = sorted({line.processes for line in report.lines})
    if len(counts) < 2:
        return
    print(
        f"\n== {report.db}: scaling over web processes (req/s, p99 ms, factor vs x{counts[0]}) =="
    )
    print("  scenario " + "".join(f"{f'x{n}':>24}" for n in counts) + f"{'raw SQL':>12}")
    for name in dict.fromkeys(line.scenario for line in report.lines):
        lines = {line.processes: line for line in report.lines if line.scenario == name}
        base = lines[counts[0]].service.rps
        cells = "".join(
            f"{lines[n].service.rps:9.0f} {lines[n].service.pct(0.99):6.0f}"
            f" {lines[n].service.rps / base if base else 0:6.2f}x"
            for n in counts
        )
        raw = lines[counts[0]].raw
        print(f"  {name:<8} {cells}{raw.rps if raw else 0:12.0f}")


def verdicts(report: Report) -> list[tuple[str, bool]]:
    out = [(f"{report.db}: no overbooking", all(not c.failures for c in report.checks.values()))]
    for line in report.lines:
        r, label = line.service, f"{report.db} {line.scenario}"
        label += f" x{line.processes}"
        if report.db == "postgres":
            want = PG_RPS[line.scenario]
            out.append((f"{label}: {r.rps:.0f} req/s >= {want}", r.rps >= want))
            out.append(
                (f"{label}: p99 {r.pct(0.99):.0f} ms < {PG_P99_MS}", r.pct(0.99) < PG_P99_MS)
            )
        if report.db == "postgres" and line.ratio is not None:
            out.append((f"{label}: service/raw {line.ratio:.2f} >= {RATIO}", line.ratio >= RATIO))
        if report.db == "sqlite":
            want = SQLITE_RPS[line.scenario]
            out.append((f"{label}: {r.rps:.0f} req/s >= {want}", r.rps >= want))
            out.append((f"{label}: 5xx = {r.errors_5xx}", r.errors_5xx == 0))
    if report.db == "sqlite":
        out.append((f"sqlite: '{LOCKED}' in server log = {report.locked}", report.locked == 0))
    return out


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("Per-IP rate limit is OFF for this run (RATE_LIMIT_SMS_PER_MINUTE=0):")
    print("  all load comes from one loopback address, which the limit would throttle.")
    print("Per-ID and per-phone limits stay ON (every couple is distinct; each hold counts).")
    print(
        f"Web processes: {args.processes} (this machine: {os.cpu_count()} cores, shared by the"
        " client, PostgreSQL, the servers and whatever else runs)."
    )
    print(
        f"Targets: overbooking {TARGETS['overbooking']}; PostgreSQL {TARGETS['postgres']};"
        f" SQLite {TARGETS['sqlite']}."
    )
    reports = []
    for kind in ("postgres", "sqlite") if args.db == "both" else (args.db,):
        print(
            f"\n== {kind}: {args.concurrency} clients, capacity {args.capacity}/slot,"
            f" server pool {args.db_pool}, LOG_LEVEL={args.log_level}, client={args.client} =="
        )
        reports.append(await bench_database(kind, args))
        print_scaling(reports[-1])
    print("\n== targets ==")
    results = [v for report in reports for v in verdicts(report)]
    for label, ok in results:
        print(f"  {'PASS' if ok else 'MISS'}  {label}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    try:
        import uvloop  # a leaner client loop; the server uses uvloop too
    except ImportError:
        raise SystemExit(asyncio.run(main())) from None
    raise SystemExit(uvloop.run(main()))
