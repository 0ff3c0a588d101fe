"""The outbox: one message per event key, claimed once, retried or failed by error class."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from scheduler.db.engine import write_transaction
from scheduler.db.tables import OutboxMessage
from scheduler.jobs.schedule import dispatch_due
from scheduler.notify import outbox
from scheduler.notify.sms import OutgoingSms, TransportError
from scheduler.settings import get_settings
from scheduler.usecases.policy import policies

FAST = replace(get_settings(), sms_rate_per_second=10_000.0)
PACED = replace(get_settings(), sms_rate_per_second=100.0)


@dataclass
class RecordingBackend:
    name: str = "recording"
    fakes_delivery: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)
    fail_with: TransportError | None = None

    async def send(self, sms: OutgoingSms) -> str:
        await asyncio.sleep(0.001)  # let concurrent dispatchers interleave
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((sms.to_phone, sms.body))
        return f"SM{len(self.sent):032d}"

    async def close(self) -> None:
        return None


NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def _enqueue(n: int, key_prefix: str = "test") -> None:
    async with write_transaction():
        for i in range(n):
            await outbox.enqueue(
                key=f"{key_prefix}:{i}",
                to_phone=f"+86138000{i:05d}",
                template="code",
                locale="zh-Hans",
                payload={"code": f"{i:06d}", "reference": "GZTH-AAAA-BBBB", "minutes": 15},
                now=NOW,
                terms=await policies.sms_terms(get_settings()),
            )


async def test_same_key_queues_one_message(db: None) -> None:
    await _enqueue(1)
    await _enqueue(1)
    assert await OutboxMessage.count() == 1


async def test_concurrent_dispatchers_send_each_message_once(db: None) -> None:
    await _enqueue(60)
    backend = RecordingBackend()
    await asyncio.gather(
        *[
            # 100/s over a 0.07 s window: batches of 7, so the workers really compete.
            dispatch_due(backend, f"worker-{w}", NOW, settings=PACED, window_seconds=0.07)
            for w in range(4)
            for _ in range(5)
        ]
    )
    phones = [to for to, _ in backend.sent]
    assert len(phones) == 60 and len(set(phones)) == 60
    rows = await OutboxMessage.select(OutboxMessage.status, OutboxMessage.provider_sid)
    assert {r["status"] for r in rows} == {"sent"}
    assert all(r["provider_sid"] for r in rows)


async def test_transient_error_backs_off_and_permanent_error_fails(db: None) -> None:
    await _enqueue(1, "transient")
    await dispatch_due(
        RecordingBackend(fail_with=TransportError("429", permanent=False, code="20429")),
        "w",
        NOW,
        settings=FAST,
    )
    row = await OutboxMessage.select().first()
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["due_at"] > NOW and row["error_code"] == "20429"
    # Not due yet: a dispatcher now claims nothing.
    assert await dispatch_due(RecordingBackend(), "w", NOW, settings=FAST) == 0

    await _enqueue(1, "permanent")
    await dispatch_due(
        RecordingBackend(fail_with=TransportError("bad number", permanent=True, code="21211")),
        "w",
        NOW,
        settings=get_settings(),
    )
    failed = await OutboxMessage.select().where(OutboxMessage.key == "permanent:0").first()
    assert failed["status"] == "failed" and failed["error_code"] == "21211"


async def test_a_killed_workers_lease_is_reclaimed(db: None) -> None:
    await _enqueue(3)
    claimed = await outbox.claim_due(NOW, "dead-worker", limit=10, lease_seconds=60)
    assert len(claimed) == 3
    # While the lease holds nobody else takes them...
    assert (
        await outbox.claim_due(NOW + timedelta(seconds=30), "other", limit=10, lease_seconds=60)
        == []
    )
    # ...after it lapses they are sent by another worker.
    backend = RecordingBackend()
    assert await dispatch_due(backend, "other", NOW + timedelta(seconds=61), settings=FAST) == 3
    assert len(backend.sent) == 3
