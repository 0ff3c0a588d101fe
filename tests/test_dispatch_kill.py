"""No lost message: the dispatcher runs as its own process (``python -m scheduler
worker``) sending through the fake Twilio on loopback, and is killed with SIGKILL
at random moments of a 1,000-message batch, again and again, then left to finish.

Every message ends ``sent`` with exactly one recorded SID, which is a send the
fake really accepted for that message; a message went out twice only if it was
on the wire when a worker died (Twilio accepted it, the answer never got
recorded), so duplicates are at most one per kill. That bound assumes one send
on the wire at a time: the killed workers send at 10/s (100 ms apart; a send and
its record take a few ms). At higher rates a kill costs as many duplicates as
sends were between Twilio's answer and our record, at most SEND_CONCURRENCY (the
send gate covers the record); the per-kill check below pins each one to a kill.

Two dispatchers at once never send a row twice, and a dispatcher stopped with
SIGTERM hands its unsent rows back at once, without duplicates.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, ClassVar

import pytest

from scheduler.db.engine import write_transaction
from scheduler.db.tables import OutboxMessage
from scheduler.kernel.clock import utcnow
from scheduler.notify import outbox
from scheduler.settings import get_settings
from scheduler.usecases.policy import policies
from tests.support.fake_twilio import FakeTwilio

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000
KILLS = 10
SEED = int(os.environ.get("KILL_TEST_SEED", random.randrange(1 << 30)))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_worker_left_behind() -> Iterator[None]:
    """A failed test must not leave a worker sending in the background."""
    yield
    for proc in Worker.started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    Worker.started.clear()


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    started: ClassVar[list[subprocess.Popen[bytes]]] = []

    @classmethod
    def start(cls, env: dict[str, str], log: Path) -> Worker:
        out: IO[bytes] = log.open("ab")
        cmd = [sys.executable, "-m", "scheduler", "worker"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)
        out.close()
        cls.started.append(proc)
        return cls(proc, log)

    def signal(self, sig: int) -> float:
        """Send ``sig``; returns when (wall clock) it was sent."""
        at = time.time()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        return at

    def sent_counts(self) -> list[int]:
        text = self.log.read_text(errors="replace")
        return [int(n) for n in re.findall(r"job dispatch_outbox: (\d+)", text)]


def _env(fake: FakeTwilio, *, rate: float, lease_grace: float = 60) -> dict[str, str]:
    return (
        os.environ
        | fake.env()
        | {
            "APP_ENV": "test",
            "SMS_RATE_PER_SECOND": str(rate),
            "SMS_QUIET_HOURS": "off",
            "SMS_LEASE_GRACE_SECONDS": str(lease_grace),
            "PUBLIC_BASE_URL": "https://registry.example.cn",
            "LOG_LEVEL": "INFO",
            "DB_POOL_MIN": "2",
            "DB_POOL_MAX": "10",
        }
    )


async def _enqueue(count: int) -> None:
    now = utcnow() - timedelta(seconds=1)
    async with write_transaction():
        for i in range(count):
            await outbox.enqueue(
                key=f"kill:{i}",
                to_phone=f"+86139{i:08d}",
                template="code",
                locale="zh-Hans",
                payload={"code": f"{i:06d}", "reference": "GZTH-AAAA-BBBB", "minutes": 15},
                now=now,
                urgent=True,  # due now whatever the test machine's clock says
                terms=await policies.sms_terms(get_settings()),
            )


async def _wait_for_sends(fake: FakeTwilio, target: int, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while fake.accepted_count() < target:
        assert time.monotonic() < deadline, f"no {target} sends; worker log:\n{_tail(log)}"
        await asyncio.sleep(0.01)


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not line.startswith("[sms]"))[-3000:]


async def _wait_all_sent(count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while await OutboxMessage.count().where(OutboxMessage.status == "sent") < count:
        assert time.monotonic() < deadline, "the batch did not finish in time"
        await asyncio.sleep(0.25)


async def _interrupt(
    fake: FakeTwilio, env: dict[str, str], log: Path, sig: int, times: int
) -> list[float]:
    """``times`` times: start a worker, signal it at a random moment once it sends.
    Returns the moments (wall clock) of the signals."""
    rng = random.Random(SEED)
    moments = []
    for _ in range(times):
        worker = Worker.start(env, log)
        try:
            await _wait_for_sends(fake, fake.accepted_count() + 1, log)
            await asyncio.sleep(rng.uniform(0, 1.0))
        finally:
            moments.append(worker.signal(sig))
    return moments


async def _check_every_message_sent_once(fake: FakeTwilio, count: int) -> list[dict[str, Any]]:
    """Each row is sent with one SID the fake issued for it; returns the fake's sends."""
    rows = await OutboxMessage.select(
        OutboxMessage.to_phone, OutboxMessage.body, OutboxMessage.status, OutboxMessage.provider_sid
    )
    assert len(rows) == count
    assert {r["status"] for r in rows} == {"sent"}
    assert len({r["provider_sid"] for r in rows}) == count
    accepted = fake.accepted()
    issued = {a["sid"]: (a["to"], a["body"]) for a in accepted}
    for row in rows:
        assert issued[row["provider_sid"]] == (row["to_phone"], row["body"])
    # Nothing was sent that is not in the outbox.
    assert set(issued.values()) == {(r["to_phone"], r["body"]) for r in rows}
    return accepted


def _duplicates_per_kill(accepted: list[dict[str, Any]], kills: list[float]) -> list[int]:
    """Charge each repeated send to the kill that cut off the first one's record: the
    first send reached the fake in the second around that kill (a request already on
    the socket arrives just after it); else there is no kill to blame."""
    sends: dict[tuple[str, str], list[float]] = defaultdict(list)
    for send in accepted:
        sends[(send["to"], send["body"])].append(send["at"])
    charged = [0] * len(kills)
    for times in sends.values():
        for first in sorted(times)[:-1]:
            blamed = [i for i, k in enumerate(kills) if -0.25 < k - first < 1.0]
            assert blamed, f"sent twice, no kill after its first send: {times} kills {kills}"
            charged[blamed[0]] += 1
    return charged


async def test_no_message_is_lost_when_the_dispatcher_is_killed(
    db: None, fake: FakeTwilio, tmp_path: Path, db_kind: str
) -> None:
    fake.reset()
    await _enqueue(BATCH)
    log = tmp_path / "worker.log"
    started = time.monotonic()
    # Killed workers send at 10/s with a short lease grace: their rows are taken
    # over a few seconds after their send time, by the next incarnation.
    kills = await _interrupt(fake, _env(fake, rate=10, lease_grace=2), log, signal.SIGKILL, KILLS)
    assert fake.accepted_count() < BATCH // 2, "the kills did not all happen during the batch"
    final = Worker.start(_env(fake, rate=500, lease_grace=2), log)
    try:
        await _wait_all_sent(BATCH, 90)
    finally:
        final.signal(signal.SIGTERM)
    accepted = await _check_every_message_sent_once(fake, BATCH)
    per_kill = _duplicates_per_kill(accepted, kills)
    print(
        f"\n[{db_kind}] seed {SEED}: {KILLS} kills, {len(accepted)} sends accepted,"
        f" duplicates per kill {per_kill}, {time.monotonic() - started:.1f} s"
    )
    assert len(accepted) - BATCH == sum(per_kill) <= KILLS


async def test_two_dispatchers_at_once_never_send_a_row_twice(
    db: None, fake: FakeTwilio, tmp_path: Path
) -> None:
    fake.reset()
    await _enqueue(BATCH)
    # 100/s shared by both: each claims 200 rows a run, so they claim side by side.
    env = _env(fake, rate=100)
    workers = [Worker.start(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    try:
        await _wait_all_sent(BATCH, 90)
    finally:
        for worker in workers:
            worker.signal(signal.SIGTERM)
    accepted = await _check_every_message_sent_once(fake, BATCH)
    assert len(accepted) == BATCH and fake.duplicates(accepted) == 0
    assert all(sum(w.sent_counts()) > 0 for w in workers), "one worker sent everything"


async def test_a_stopped_dispatcher_hands_back_its_rows_without_duplicates(
    db: None, fake: FakeTwilio, tmp_path: Path
) -> None:
    fake.reset()
    await _enqueue(500)
    # The default lease grace (60 s): the batch only finishes in time if every
    # SIGTERM hands the unsent rows back at once.
    env = _env(fake, rate=50)
    await _interrupt(fake, env, tmp_path / "worker.log", signal.SIGTERM, 4)
    assert fake.accepted_count() < 500
    final = Worker.start(env, tmp_path / "worker.log")
    try:
        await _wait_all_sent(500, 40)
    finally:
        final.signal(signal.SIGTERM)
    accepted = await _check_every_message_sent_once(fake, 500)
    assert len(accepted) == 500 and fake.duplicates(accepted) == 0
