"""Shared pieces of the benchmarks: the server process, the databases, people, a lean
HTTP/1.1 load client and the overbooking check. Nothing here imports Piccolo: the
bench process talks to two databases in turn, the server subprocess to one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
ACTIVE = ("pending_confirmation", "confirmed")
SECRET_KEY = "bench-secret-key-0123456789abcdef"  # noqa: S105 - 32+ characters, test only
# PostgreSQL and https refuse to start without DATA_KEYS (issue 13): a bench key.
DATA_KEYS = "YmVuY2gtZGF0YS1rZXktMDEyMzQ1Njc4OWFiY2RlZjA"
CLK_TCK = os.sysconf("SC_CLK_TCK")
if str(REPO) not in sys.path:  # run as a script: scheduler/ and tests/ live one level up
    sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- the service


def service_env(database_url: str, port: int, *, pool: int, log_level: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "JOBS_ENABLED": "false",
        # All load comes from one loopback address: a per-client limit would 429 it all.
        "RATE_LIMIT_SMS_PER_MINUTE": "0",
        "SECRET_KEY": SECRET_KEY,
        "DATA_KEYS": DATA_KEYS,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DB_POOL_MIN": str(pool),
        "DB_POOL_MAX": str(pool),
        "LOG_LEVEL": log_level,
    }


def scheduler_cli(env: dict[str, str], app_dir: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        env=env,
        cwd=app_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"scheduler {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def bench_offices_toml(capacity: int) -> str:
    """One office open 08:00-18:00 every day (30-minute slots, 20 a day); the day and
    on-site caps are far above anything the run can book, so the slot cap is the one
    that bites."""
    hours = "\n".join(f'"{d}" = [["08:00", "18:00"]]' for d in range(7))
    return f"""
[defaults]
timezone = "Asia/Shanghai"
booking_days_ahead = 30
booking_opens_at = "00:00"
hold_minutes = 15

[defaults.weekly_hours]
{hours}

[[office]]
code = "BENCH"
name_zh = "压测婚姻登记处"
name_en = "Benchmark Marriage Registry"
region = "bench"
counters = 10
day_cap = 1000000
onsite_cap = 1000000
  [[office.service]]
  service = "marriage"
  slot_minutes = 30
  slot_cap = {capacity}
"""


class Server:
    """``python -m scheduler serve`` (uvicorn, one worker) as a subprocess."""

    def __init__(self, env: dict[str, str], app_dir: Path, log_path: Path) -> None:
        self.port = int(env["PORT"])
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "serve"],
            env=env,
            cwd=app_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                status, _ = await http_get(self.port, "/api/v1/offices")
                if status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise SystemExit("server did not answer within 30 s")

    def cpu_seconds(self) -> float:
        return proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat): subtracting
    ours shows how much other processes took during a run."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def postgres_cpu(data_dir: Path) -> float:
    """CPU seconds of a PostgreSQL cluster: the postmaster, its reaped and live children."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = proc_cpu(postmaster, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                total += proc_cpu(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


# ---------------------------------------------------------------- databases


class Db:
    """Reads (and the raw-SQL ceiling's writes) straight through asyncpg / sqlite3."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite:")
        self.path = url.removeprefix("sqlite:///")

    async def fetch(self, sql: str) -> list[dict[str, Any]]:
        if self.is_sqlite:
            with sqlite3.connect(self.path) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(sql)]
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            return [dict(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()


def as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def as_utc(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC)


def window_start(start_at: datetime, tz: ZoneInfo) -> datetime:
    """The service's on-site window: the local clock hour containing the slot start."""
    from scheduler.domain.calendar import onsite_window_start

    return onsite_window_start(start_at, tz)


async def bench_slots(db: Db) -> dict[date, list[dict[str, Any]]]:
    """Slots of the bench office by local day, from the day after tomorrow on
    (never 'past', whatever the hour)."""
    rows = await db.fetch(
        "SELECT s.id, s.office, s.day, s.start_at, o.timezone FROM slot s"
        " JOIN office o ON o.id = s.office WHERE o.code = 'BENCH' ORDER BY s.start_at"
    )
    first = datetime.now(UTC).date() + timedelta(days=2)
    days: dict[date, list[dict[str, Any]]] = {}
    for r in rows:
        r["day"], r["start_at"] = as_date(r["day"]), as_utc(r["start_at"])
        r["window"] = window_start(r["start_at"], ZoneInfo(r["timezone"]))
        if r["day"] >= first:
            days.setdefault(r["day"], []).append(r)
    return days


@dataclass
class CapCheck:
    rows: int = 0
    failures: list[str] = field(default_factory=list)


async def check_caps(db: Db, *, waiting_per_free_seat: int | None = None) -> dict[str, CapCheck]:
    """Stored counters equal what active appointments add up to, and never exceed
    their capacity: per slot, per office day and per on-site window; the unconfirmed
    share and the holds waiting for a seat per slot. ``waiting_per_free_seat``: the
    servers' HOLD_WAITING_PER_FREE_SEAT (default: this environment's, else 1)."""
    if waiting_per_free_seat is None:
        waiting_per_free_seat = int(os.environ.get("HOLD_WAITING_PER_FREE_SEAT", "1"))
    slots = {
        r["id"]: r
        for r in await db.fetch(
            "SELECT s.id, s.office, s.day, s.start_at, s.capacity, s.booked, o.timezone"
            " FROM slot s JOIN office o ON o.id = s.office"
        )
    }
    # The columns of the schema measured: an older checkout (``--app-dir``) may predate
    # the day proofs and the waiting count, whose checks then do not apply.
    slot_columns = set((await db.fetch("SELECT * FROM slot LIMIT 1") or [{}])[0])
    status_list = ", ".join(f"'{s}'" for s in ACTIVE)
    # A hold beyond the unconfirmed share (awaiting_seat) takes no seat until both
    # partners confirm (docs/decisions.md, "The abuse model"): it counts nowhere.
    appts = await db.fetch(
        f"SELECT slot, people FROM appointment WHERE status IN ({status_list})"  # noqa: S608
        " AND NOT awaiting_seat"
    )
    by_slot: Counter[int] = Counter()
    by_day: Counter[tuple[int, date]] = Counter()
    by_window: Counter[tuple[int, datetime]] = Counter()
    for a in appts:
        s = slots[a["slot"]]
        by_slot[s["id"]] += 1
        by_day[(s["office"], as_date(s["day"]))] += 1
        window = window_start(as_utc(s["start_at"]), ZoneInfo(s["timezone"]))
        by_window[(s["office"], window)] += a["people"]
    out = {
        "slot": CapCheck(),
        "office_day": CapCheck(),
        "onsite_window": CapCheck(),
        "unconfirmed_share": CapCheck(),
        "waiting_holds": CapCheck(),
    }

    def verify(kind: str, name: str, stored: int, actual: int, capacity: int) -> None:
        out[kind].rows += 1
        if not stored == actual <= capacity:
            out[kind].failures.append(f"{name}: stored {stored}, actual {actual}, cap {capacity}")

    for s in slots.values():
        verify("slot", f"slot {s['id']}", s["booked"], by_slot[s["id"]], s["capacity"])
    # A day whose slot caps keep its cap (issue 16) has no stored count: the true
    # count is checked against its cap, the stored one only where the row keeps it.
    covered = (
        {
            (r["office"], as_date(r["day"]))
            for r in await db.fetch("SELECT DISTINCT office, day FROM slot WHERE day_covered")
        }
        if "day_covered" in slot_columns
        else set()
    )
    for d in await db.fetch("SELECT office, day, capacity, booked FROM office_day"):
        key = (d["office"], as_date(d["day"]))
        stored = by_day[key] if key in covered else d["booked"]
        verify("office_day", f"day {key}", stored, by_day[key], d["capacity"])
    holding = Counter(
        r["hold_slot"]
        for r in await db.fetch(
            "SELECT hold_slot FROM appointment WHERE hold_slot IS NOT NULL"
        )
    )
    for s in await db.fetch("SELECT id, capacity, held FROM slot"):
        # At most half a slot (rounded up) is held by holds nobody has confirmed.
        share = (s["capacity"] + 1) // 2
        verify("unconfirmed_share", f"slot {s['id']}", s["held"], holding[s["id"]], share)
    # Holds beyond the share that wait for a seat: counted on their slot while pending,
    # at most k per seat not taken when each came, so never more than k x the cap.
    if "waiting" not in slot_columns:
        del out["waiting_holds"]
    waiting = Counter(
        r["wait_slot"]
        for r in (
            await db.fetch(
                "SELECT wait_slot FROM appointment WHERE wait_slot IS NOT NULL"
                " AND status = 'pending_confirmation'"
            )
            if "waiting" in slot_columns
            else []
        )
    )
    with_waiting = "waiting" in slot_columns
    waiting_rows = await db.fetch("SELECT id, capacity, waiting FROM slot") if with_waiting else []
    for s in waiting_rows:
        bound = waiting_per_free_seat * s["capacity"]
        verify("waiting_holds", f"slot {s['id']}", s["waiting"], waiting[s["id"]], bound)
    for w in await db.fetch("SELECT office, window_start, capacity, people FROM onsite_window"):
        key = (w["office"], as_utc(w["window_start"]))
        verify("onsite_window", f"window {key}", w["people"], by_window[key], w["capacity"])
    return out


# ---------------------------------------------------------------- people and requests


def person(n: int) -> dict[str, str]:
    """A distinct, valid party: mainland ID (birth date + sequence) and +86 mobile."""
    from scheduler.domain.identity import make_mainland_id

    born = date(1970, 1, 1) + timedelta(days=n // 1000)
    return {
        "name": f"压测{n}",
        "id_type": "mainland_id",
        "id_number": make_mainland_id(f"440106{born:%Y%m%d}{n % 1000:03d}"),
        "phone": f"+86138{n % 100_000_000:08d}",
    }


def booking_request(port: int, slot_id: int, n: int) -> bytes:
    """A complete HTTP/1.1 request for couple ``n`` (people 2n and 2n+1)."""
    body = json.dumps(
        {
            "slot_id": slot_id,
            "service": "marriage",
            "locale": "zh-Hans",
            "party_a": person(2 * n),
            "party_b": person(2 * n + 1),
        }
    ).encode()
    head = (
        f"POST /api/v1/appointments HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# ---------------------------------------------------------------- the load client


@dataclass
class Result:
    statuses: Counter[int]
    latencies: list[float]
    wall: float
    client_cpu: float

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.count / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    @property
    def other(self) -> int:
        return self.count - self.statuses[201] - self.statuses[409]

    @property
    def errors_5xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    start = lower.find(b"content-length:")
    length = int(lower[start + 15 : lower.find(b"\r\n", start)]) if start >= 0 else 0
    body = await reader.readexactly(length)
    return int(head[9:12]), body, b"connection: close" in lower


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        status, body, _ = await asyncio.wait_for(_exchange(reader, writer, request), 5)
        return status, body
    finally:
        writer.close()


async def run_load(
    port: int | list[int],
    requests: Iterable[bytes],
    concurrency: int,
    duration: float | None = None,
) -> Result:
    """Each of ``concurrency`` workers keeps one connection and sends the next
    prebuilt request as soon as its previous answer is read. Status 0 = transport error.
    Several ports (one per web process): connections are dealt round-robin, as a
    load balancer would."""
    ports = port if isinstance(port, list) else [port]
    pending = iter(requests)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    conns = [
        (ports[i % len(ports)], await asyncio.open_connection("127.0.0.1", ports[i % len(ports)]))
        for i in range(concurrency)
    ]
    deadline = time.perf_counter() + duration if duration else None

    async def worker(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for request in pending:
            if deadline and time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            try:
                status, _, close = await _exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError):
                status, close = 0, True
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(p, r, w) for p, (r, w) in conns))
    return Result(statuses, latencies, time.perf_counter() - wall0, time.process_time() - cpu0)


async def run_load_httpx(
    port: int, requests: Iterable[bytes], concurrency: int, duration: float | None = None
) -> Result:
    """The same load through httpx.AsyncClient, to compare client overhead."""
    import httpx

    pending = (r.split(b"\r\n\r\n", 1)[1] for r in requests)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.perf_counter() + duration if duration else None
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def worker() -> None:
            for body in pending:
                if deadline and time.perf_counter() > deadline:
                    break
                started = time.perf_counter()
                try:
                    resp = await client.post("/api/v1/appointments", content=body, headers=headers)
                    status = resp.status_code
                except httpx.HTTPError:
                    status = 0
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(statuses, latencies, time.perf_counter() - wall0, time.process_time() - cpu0)
