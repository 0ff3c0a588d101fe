"""Several processes on one PostgreSQL, on loopback: three web processes
(``python -m scheduler serve``, jobs off) and two workers (``python -m scheduler
worker``, sending through the fake Twilio), all started once for this module.

* a booking rush spread over the three stays within the cap, exactly;
  an Idempotency-Key sent to all three at once books once;
* a board streamed from process A shows a call a clerk makes on process B;
* two workers dispatching never send an SMS twice;
* a web process SIGKILLed mid-rush loses no committed booking (clients retry on
  the others with their Idempotency-Key, as behind a load balancer).

POSTGRESQL ONLY. SQLite is the single-process embedded mode (in-memory board
ticks, one writer): on ``--db sqlite`` these tests are skipped with that reason,
and the only test that runs checks that ``serve --workers 2`` refuses SQLite.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db.tables import (
    Appointment,
    Office,
    OfficeDay,
    OnsiteWindow,
    OutboxMessage,
    Slot,
)
from scheduler.domain.calendar import onsite_window_start
from scheduler.notify.live_pg import APPLICATION_NAME
from tests.helpers import booking_body, make_office, open_slots, staff_token
from tests.servers import free_port
from tests.support.day_counters import check_days
from tests.support.fake_twilio import FakeTwilio
from tests.test_desk_pages import confirmed_today

ROOT = Path(__file__).resolve().parents[1]
SQLITE_REASON = (
    "multi-process topology needs PostgreSQL: SQLite is the single-process embedded mode"
)
START_TIMEOUT = 60.0
# The board's heartbeat re-read comes every 15 s (live.HEARTBEAT_SECONDS): a call
# seen within 10 s came through NOTIFY from the other process, not the heartbeat.
BOARD_WAIT = 10.0
SMS_WAIT = 60.0
ACTIVE = ("pending_confirmation", "confirmed")


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Topology:
    web: list[Proc]
    workers: list[Proc]
    fake: FakeTwilio
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)


def _spawn(name: str, args: list[str], env: dict[str, str], log: Path, port: int = 0) -> Proc:
    out: IO[bytes] = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args], cwd=ROOT, env=env, stdout=out, stderr=out
    )
    out.close()
    return Proc(name, proc, log, port)


async def _wait_up(web: list[Proc]) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=5) as client:
        for p in web:
            while True:
                if p.proc.poll() is not None:
                    raise RuntimeError(f"{p.name} exited:\n{p.tail()}")
                try:
                    if (await client.get(p.base + "/api/v1/offices")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"{p.name} did not start:\n{p.tail()}")
                await asyncio.sleep(0.2)


COMMON_ENV = {"APP_ENV": "test", "DB_POOL_MIN": "2", "DB_POOL_MAX": "10"}


def _web_env(port: int) -> dict[str, str]:
    return (
        os.environ
        | COMMON_ENV
        | {
            "JOBS_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
    )


@pytest.fixture(scope="module")
def postgres_only(db_kind: str) -> None:
    if db_kind != "postgres":
        pytest.skip(SQLITE_REASON)


@pytest.fixture(scope="module")
async def topology(
    postgres_only: None, migrated: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Topology]:
    logs = tmp_path_factory.mktemp("multiprocess")
    fake = FakeTwilio.start()
    worker_env = (
        os.environ
        | COMMON_ENV
        | fake.env()
        | {
            "SMS_RATE_PER_SECOND": "20",  # 80 codes take ~4 s: both workers get a share
            "SMS_QUIET_HOURS": "off",
            "PUBLIC_BASE_URL": "https://registry.example.cn",
            "LOG_LEVEL": "INFO",
        }
    )
    web, workers = [], []
    try:
        for name in "ABC":
            port = free_port()
            web.append(_spawn(name, ["serve"], _web_env(port), logs / f"web-{name}.log", port))
        for n in (1, 2):
            workers.append(_spawn(f"W{n}", ["worker"], worker_env, logs / f"worker-{n}.log"))
        await _wait_up(web)
        topo = Topology(web, workers, fake)
        for p in web:
            topo.clients[p.name] = httpx.AsyncClient(base_url=p.base, timeout=30)
        yield topo
        for client in topo.clients.values():
            await client.aclose()
    finally:
        for p in [*web, *workers]:
            p.stop()
        fake.stop()


# ---------------------------------------------------------------- the rush


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    served_by: str
    retries: int


async def _book(
    topo: Topology,
    order: list[str],
    body: dict[str, Any],
    key: str,
    on_answer: Callable[[str], None] = lambda _name: None,
) -> Outcome:
    """POST the booking to ``order[0]``; on a transport error (the process died)
    the same request, with the same Idempotency-Key, goes to the next process."""
    for retries, name in enumerate(order):
        try:
            resp = await topo.clients[name].post(
                "/api/v1/appointments", json=body, headers={"Idempotency-Key": key}
            )
        except httpx.TransportError:
            continue
        on_answer(name)
        return Outcome(resp.status_code, resp.json(), name, retries)
    raise AssertionError(f"no process answered {key}")


def _orders(names: list[str]) -> Iterator[list[str]]:
    """Round-robin over the processes; the fallbacks follow in ring order."""
    for i in itertools.count():
        first = i % len(names)
        yield names[first:] + names[:first]


async def _recount_differences() -> list[str]:
    """Stored seat counters that differ from what the active appointments add up to
    (slot, office day, on-site hour window), or that exceed their capacity."""
    slots = {s["id"]: s for s in await Slot.select()}
    zones = {o["id"]: ZoneInfo(o["timezone"]) for o in await Office.select()}
    by_slot: Counter[int] = Counter()
    by_day: Counter[tuple[int, Any]] = Counter()
    by_window: Counter[tuple[int, Any]] = Counter()
    for a in await Appointment.select().where(Appointment.status.is_in(list(ACTIVE))):
        s = slots[a["slot"]]
        by_slot[s["id"]] += 1
        by_day[(s["office"], s["day"])] += 1
        by_window[(s["office"], onsite_window_start(s["start_at"], zones[s["office"]]))] += a[
            "people"
        ]
    bad = [
        f"slot {s['id']}: {s['booked']} stored, {by_slot[s['id']]} counted, cap {s['capacity']}"
        for s in slots.values()
        if not s["booked"] == by_slot[s["id"]] <= s["capacity"]
    ]
    # The day's true count within its cap; its stored one where its row keeps it.
    try:
        await check_days(dict(by_day))
    except AssertionError as exc:
        bad.append(f"day: {exc}")
    assert await OfficeDay.count() > 0
    for w in await OnsiteWindow.select():
        key = (w["office"], w["window_start"])
        if not w["people"] == by_window[key] <= w["capacity"]:
            bad.append(f"window {w['window_start']}: {w['people']} stored")
    return bad


async def _rush(
    topo: Topology, slot_id: int, couples: int, on_answer: Callable[[str], None] | None = None
) -> list[Outcome]:
    gate = asyncio.Semaphore(24)
    orders = _orders([p.name for p in topo.web])

    async def one(n: int, order: list[str]) -> Outcome:
        async with gate:
            key = f"rush-{slot_id}-{n:04d}"
            return await _book(
                topo, order, booking_body(slot_id), key, on_answer or (lambda _: None)
            )

    return list(await asyncio.gather(*(one(n, next(orders)) for n in range(couples))))


async def test_a_rush_over_three_processes_books_exactly_the_capacity(
    topology: Topology, db: None
) -> None:
    await make_office(code="GZ-TH", slot_cap=15, days_ahead=5)
    slot, twin_slot = (await open_slots(topology.clients["A"]))[:2]

    outcomes = await _rush(topology, slot["id"], couples=45)

    statuses = Counter(o.status for o in outcomes)
    assert statuses == {201: 15, 409: 30}, statuses
    assert {o.served_by for o in outcomes} == {"A", "B", "C"}
    assert {o.body["type"].rsplit("/", 1)[1] for o in outcomes if o.status == 409} <= {"slot-full"}
    references = {o.body["reference"] for o in outcomes if o.status == 201}
    stored = await Appointment.select(Appointment.reference).where(Appointment.slot == slot["id"])
    assert {r["reference"] for r in stored} == references
    assert await _recount_differences() == []

    # One Idempotency-Key sent to all three processes at once books once, and all
    # three answer with that one booking.
    body = booking_body(twin_slot["id"])
    twins = await asyncio.gather(
        *(_book(topology, [name], body, "twin-key-0001") for name in ("A", "B", "C"))
    )
    assert [t.status for t in twins] == [201, 201, 201], [t.body for t in twins]
    assert len({t.body["reference"] for t in twins}) == 1
    assert await Appointment.count().where(Appointment.slot == twin_slot["id"]) == 1


# ---------------------------------------------------------------- the board


async def _board_events(client: httpx.AsyncClient, office: str, into: asyncio.Queue[Any]) -> None:
    async with client.stream("GET", f"/offices/{office}/board/stream") as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                await into.put(json.loads(line.removeprefix("data:").strip()))


async def _until(events: asyncio.Queue[Any], seen: Callable[[dict[str, Any]], bool]) -> None:
    async def scan() -> None:
        while not seen(await events.get()):
            pass

    await asyncio.wait_for(scan(), BOARD_WAIT)


async def test_a_board_on_one_process_shows_a_call_made_on_another(
    topology: Topology, db: None
) -> None:
    await make_office(code="GZ-TH", days_ahead=3)
    (couple,) = await confirmed_today(count=1)
    on_b = topology.clients["B"]
    clerk = await staff_token(on_b, "mp.clerk")
    events: asyncio.Queue[Any] = asyncio.Queue()
    reader = asyncio.create_task(_board_events(topology.clients["A"], "GZ-TH", events))
    try:
        first = await asyncio.wait_for(events.get(), BOARD_WAIT)
        assert first["called"] == [] and first["next"] == []

        checked = await on_b.post(
            "/api/v1/offices/GZ-TH/checkins",
            json={"reference": couple["reference"], "parties_present": ["a", "b"]},
            headers=clerk,
        )
        assert checked.status_code == 201, checked.text
        label = checked.json()["label"]
        await _until(events, lambda state: label in state["next"])

        called = await on_b.post(
            "/api/v1/offices/GZ-TH/queue/call-next", json={"counter": "3"}, headers=clerk
        )
        assert called.status_code == 200, called.text
        await _until(
            events,
            lambda state: {"label": label, "counter": "3", "status": "called"} in state["called"],
        )
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


# ---------------------------------------------------------------- SMS


async def test_two_workers_send_every_sms_exactly_once(topology: Topology, db: None) -> None:
    await make_office(code="GZ-TH", slot_cap=40, days_ahead=5)
    slot = (await open_slots(topology.clients["A"]))[0]
    outcomes = await _rush(topology, slot["id"], couples=40)
    assert Counter(o.status for o in outcomes) == {201: 40}

    # 80 codes (one per partner), dispatched by whichever worker claims them.
    deadline = asyncio.get_running_loop().time() + SMS_WAIT
    while True:
        rows = await OutboxMessage.select(
            OutboxMessage.key, OutboxMessage.to_phone, OutboxMessage.status, OutboxMessage.body
        ).where(OutboxMessage.template == "code")
        if len(rows) == 80 and all(r["status"] in ("sent", "delivered") for r in rows):
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(Counter(r["status"] for r in rows))
        await asyncio.sleep(0.5)

    phones = {r["to_phone"] for r in rows}
    accepted = [r for r in topology.fake.accepted() if r["to"] in phones]
    per_message = Counter((r["to"], r["body"]) for r in accepted)
    # Every outbox row (one per key) reached Twilio exactly once.
    assert sorted(per_message.values()) == [1] * 80
    assert set(per_message) == {(r["to_phone"], r["body"]) for r in rows}
    logs = [w.log.read_text(errors="replace") for w in topology.workers]
    assert all("job dispatch_outbox:" in text for text in logs), "one worker sent everything"


# ---------------------------------------------------------------- a process dies


async def test_a_web_process_killed_mid_rush_loses_no_committed_booking(
    topology: Topology, db: None
) -> None:
    await make_office(code="GZ-TH", slot_cap=60, days_ahead=5)
    slot = (await open_slots(topology.clients["A"]))[0]
    victim = topology.web[2]
    answers_from_victim = 0

    def on_answer(name: str) -> None:
        nonlocal answers_from_victim
        if name == victim.name:
            answers_from_victim += 1
            if answers_from_victim == 6:
                victim.proc.send_signal(signal.SIGKILL)

    outcomes = await _rush(topology, slot["id"], couples=150, on_answer=on_answer)
    assert victim.proc.wait(10) == -signal.SIGKILL

    statuses = Counter(o.status for o in outcomes)
    assert statuses == {201: 60, 409: 90}, statuses
    retried = [o for o in outcomes if o.retries]
    assert retried, "the kill came after the rush"
    assert all(o.served_by != victim.name for o in retried)
    # Every booking a client was told about is in the database, once.
    told = [o.body["reference"] for o in outcomes if o.status == 201]
    assert len(set(told)) == 60
    stored = await Appointment.select(Appointment.reference, Appointment.status).where(
        Appointment.slot == slot["id"]
    )
    assert {r["reference"] for r in stored} == set(told)
    assert {r["status"] for r in stored} == {"pending_confirmation"}
    assert await _recount_differences() == []


# ---------------------------------------------------------------- serve --workers


async def _listeners() -> int:
    rows = await Office.raw(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = {}",
        APPLICATION_NAME,
    )
    return int(rows[0]["n"])


async def test_serve_workers_runs_app_processes_with_their_own_listeners(
    postgres_only: None, db: None, tmp_path: Path
) -> None:
    """``serve --workers 2``: uvicorn starts two processes from the import string,
    each with its own lifespan: its own pool and its own board listener."""
    before = await _listeners()
    port = free_port()
    served = _spawn("W", ["serve", "--workers", "2"], _web_env(port), tmp_path / "w.log", port)
    try:
        await _wait_up([served])
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while await _listeners() < before + 2:
            assert asyncio.get_running_loop().time() < deadline, served.tail()
            await asyncio.sleep(0.2)
    finally:
        served.stop()
    assert served.proc.returncode == 0, served.tail()


# ---------------------------------------------------------------- SQLite


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    env = os.environ | {"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "APP_ENV": "test"}
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "serve", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "needs PostgreSQL" in proc.stderr
