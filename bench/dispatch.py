"""SMS dispatch: 10,000 due messages sent by ``python -m scheduler worker`` through the
fake Twilio (tests/support/fake_twilio.py) on loopback, on a throwaway PostgreSQL cluster
(tests/support/pgcluster.py) and on a temporary SQLite file.

  unpaced    SMS_RATE_PER_SECOND=10000: messages/s from the first send to the last
             one recorded ``sent`` (target: at least 300/s on PostgreSQL)
  paced      SMS_RATE_PER_SECOND=10 and 100, with the 10,000 still queued: the rate
             the fake sees over a fixed number of sends (target: within 5%)

Every run also checks that each message was sent exactly once. Run:
.venv/bin/python bench/dispatch.py [--help]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: scheduler/ and tests/ live one level up
    sys.path.insert(0, str(REPO))

from tests.support.fake_twilio import FakeTwilio  # noqa: E402
from tests.support.pgcluster import destroy_cluster, start_cluster  # noqa: E402

SECRET_KEY = "bench-secret-key-0123456789abcdef"  # noqa: S105 - test only
UNPACED_TARGET = 300.0
PACING_TOLERANCE = 5.0  # percent


@dataclass
class Figures:
    unpaced: float = 0.0
    unpaced_wire: float = 0.0
    cpu_ms: float = 0.0  # worker CPU per message, unpaced: what a busy machine cannot skew
    paced: dict[float, float] = field(default_factory=dict)
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the database


def _env(url: str, **extra: str) -> dict[str, str]:
    return (
        os.environ
        | {
            "DATABASE_URL": url,
            "APP_ENV": "test",
            "SECRET_KEY": SECRET_KEY,
            # https and PostgreSQL refuse to start without DATA_KEYS (issue 13).
            "DATA_KEYS": "YmVuY2gtZGF0YS1rZXktMDEyMzQ1Njc4OWFiY2RlZjA",
            "JOBS_ENABLED": "false",
            "SMS_QUIET_HOURS": "off",
            "PUBLIC_BASE_URL": "https://registry.example.cn",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_MIN": "2",
            "DB_POOL_MAX": "10",
            "PYTHONPATH": str(REPO),
        }
        | extra
    )


def _run(url: str, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=_env(url), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


async def _count_sent(url: str) -> int:
    sql = "SELECT count(*) AS n FROM outbox_message WHERE status = 'sent'"
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def fill(count: int) -> None:
    """(In a child process, DATABASE_URL set.) Empty the outbox, queue ``count`` due messages."""
    from scheduler.db.engine import close_engine, current_engine, open_engine, write_transaction
    from scheduler.kernel.clock import utcnow
    from scheduler.notify import outbox
    from scheduler.settings import get_settings
    from scheduler.usecases.policy import policies

    await open_engine(get_settings())
    terms = await policies.sms_terms(get_settings())  # what the policy store tells notify
    for table in ("outbox_message", "sms_pace", "delivery_event"):
        await current_engine().run_ddl(f"DELETE FROM {table}")  # noqa: S608 - constant names
    now = utcnow()
    for start in range(0, count, 1000):
        async with write_transaction():
            for i in range(start, min(start + 1000, count)):
                await outbox.enqueue(
                    key=f"bench:{i}",
                    to_phone=f"+86139{i:08d}",
                    template="code",
                    locale="zh-Hans",
                    payload={"code": f"{i:06d}", "reference": "GZTH-AAAA-BBBB", "minutes": 15},
                    now=now,
                    terms=terms,
                )
    await close_engine()


# ---------------------------------------------------------------- the runs


def _start_workers(
    url: str, fake: FakeTwilio, rate: float, n: int
) -> list[subprocess.Popen[bytes]]:
    env = _env(url, SMS_RATE_PER_SECOND=str(rate), **fake.env())
    cmd = [sys.executable, "-m", "scheduler", "worker"]
    return [subprocess.Popen(cmd, cwd=REPO, env=env) for _ in range(n)]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def unpaced(
    url: str, fake: FakeTwilio, messages: int, workers: int, figures: Figures
) -> None:
    _run(url, str(Path(__file__)), "--fill", str(messages), "--fill-url", url)
    fake.reset()
    procs = _start_workers(url, fake, 10_000, workers)
    try:
        deadline = time.monotonic() + 600
        while await _count_sent(url) < messages:
            if time.monotonic() > deadline:
                figures.problems.append("unpaced run did not finish in 10 minutes")
                return
            await asyncio.sleep(0.1)
        done = time.time()
        figures.cpu_ms = 1000 * sum(_cpu_seconds(p.pid) for p in procs) / messages
    finally:
        _stop(procs)
    sends = sorted(r["at"] for r in fake.accepted())
    figures.unpaced = messages / (done - sends[0])
    figures.unpaced_wire = (len(sends) - 1) / (sends[-1] - sends[0])
    figures.duplicates = fake.duplicates()
    if len(sends) != messages:
        figures.problems.append(f"unpaced: {len(sends)} sends for {messages} messages")


async def paced(url: str, fake: FakeTwilio, messages: int, rate: float, count: int) -> float:
    """Achieved rate over the first ``count`` sends, the whole queue waiting behind them."""
    _run(url, str(Path(__file__)), "--fill", str(messages), "--fill-url", url)
    fake.reset()
    procs = _start_workers(url, fake, rate, 1)
    try:
        while True:
            if fake.accepted_count() >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        _stop(procs)
    sends = sorted(r["at"] for r in fake.accepted())[:count]
    return (count - 1) / (sends[-1] - sends[0])


async def bench(kind: str, args: argparse.Namespace, fake: FakeTwilio) -> Figures:
    figures = Figures()
    cluster, tmp = None, tempfile.mkdtemp(prefix="bench-dispatch-")
    try:
        if kind == "postgres":
            cluster = start_cluster()
            cluster.psql("CREATE DATABASE bench")
            url = cluster.dsn("bench")
        else:
            url = f"sqlite:///{tmp}/bench.sqlite3"
        _run(url, "-m", "scheduler", "migrate")
        if not args.no_unpaced:
            print(f"[{kind}] unpaced, {args.messages} messages, {args.workers} worker(s) ...")
            await unpaced(url, fake, args.messages, args.workers, figures)
        for rate, count in args.paced:
            print(f"[{kind}] paced at {rate:g}/s over {count} sends ...")
            figures.paced[rate] = await paced(url, fake, args.messages, rate, count)
    finally:
        if cluster is not None:
            destroy_cluster(cluster)
    return figures


# ---------------------------------------------------------------- the report


def report(results: dict[str, Figures], args: argparse.Namespace) -> bool:
    kinds = list(results)
    head = f"{'':34}" + "".join(f"{k:>16}" for k in kinds) + f"{'target':>22}"
    print(
        f"\n{args.messages:,} due messages, fake Twilio on loopback;"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(head)
    ok = True

    def row(label: str, values: list[str], target: str) -> None:
        print(f"{label:34}" + "".join(f"{v:>16}" for v in values) + f"{target:>22}")

    row(
        "unpaced, msgs/s (sent+recorded)",
        [f"{r.unpaced:.0f}" for r in results.values()],
        f">= {UNPACED_TARGET:.0f} (PostgreSQL)",
    )
    row("unpaced, msgs/s (at the fake)", [f"{r.unpaced_wire:.0f}" for r in results.values()], "")
    row("unpaced, worker CPU ms/msg", [f"{r.cpu_ms:.2f}" for r in results.values()], "")
    if "postgres" in results:
        ok &= results["postgres"].unpaced >= UNPACED_TARGET
    for rate, _count in args.paced:
        values = []
        for figures in results.values():
            achieved = figures.paced.get(rate, 0.0)
            error = (achieved / rate - 1) * 100
            ok &= abs(error) <= PACING_TOLERANCE
            values.append(f"{achieved:.2f} ({error:+.1f}%)")
        row(f"paced {rate:g}/s, achieved /s", values, f"within +/-{PACING_TOLERANCE:g}%")
    row("duplicate sends", [str(r.duplicates) for r in results.values()], "0")
    for kind, figures in results.items():
        ok &= figures.duplicates == 0 and not figures.problems
        for problem in figures.problems:
            print(f"  {kind}: {problem}")
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--db", choices=("both", "postgres", "sqlite"), default="both")
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=1, help="worker processes for the unpaced run")
    p.add_argument("--paced", default="10:150,100:1000", help="rate:sends pairs to measure")
    p.add_argument("--no-unpaced", action="store_true", help="measure pacing only")
    p.add_argument("--fill", type=int, help=argparse.SUPPRESS)
    p.add_argument("--fill-url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.paced = [
        (float(r), int(c)) for r, c in (pair.split(":") for pair in args.paced.split(","))
    ]
    return args


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.fill is not None:
        # The child empties the outbox: only of the database its parent named.
        if not args.fill_url or os.environ.get("DATABASE_URL") != args.fill_url:
            raise SystemExit("--fill needs --fill-url equal to DATABASE_URL")
        await fill(args.fill)
        return 0
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    fake = FakeTwilio.start()
    try:
        results = {kind: await bench(kind, args, fake) for kind in kinds}
    finally:
        fake.stop()
    return 0 if report(results, args) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
