"""The outbox: every SMS is a row written in the transaction that causes it.

A dispatcher claims due rows with a lease (so a killed worker's rows are taken
over once the lease lapses), sends outside any transaction, and records the
result. Rows are never deleted by sending: the table is the delivery record.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from scheduler.db.engine import current_engine, write_transaction
from scheduler.db.tables import OutboxMessage
from scheduler.notify.sms import SmsBackend, TransportError
from scheduler.notify.texts import render_sms

MAX_ATTEMPTS = 8
BASE_BACKOFF_SECONDS = 10


async def enqueue(
    *,
    key: str,
    to_phone: str,
    template: str,
    locale: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue one SMS; the same ``key`` never queues a second message.

    Call inside the transaction of the change that causes the message.
    """
    body = render_sms(template, locale, payload)
    await OutboxMessage.insert(
        OutboxMessage(
            key=key,
            to_phone=to_phone,
            template=template,
            locale=locale,
            payload=payload,
            body=body,
            status="pending",
            due_at=now,
            created_at=now,
        )
    ).on_conflict(action="DO NOTHING")


@dataclass(frozen=True)
class Claimed:
    id: int
    to_phone: str
    body: str
    attempts: int


async def claim_due(now: datetime, owner: str, *, limit: int, lease_seconds: int) -> list[Claimed]:
    """Atomically lease up to ``limit`` due rows to ``owner``."""
    skip_locked = " FOR UPDATE SKIP LOCKED" if isinstance(current_engine(), PostgresEngine) else ""
    async with write_transaction():
        rows = await OutboxMessage.raw(
            # Constant SQL apart from the locking clause; values go in as parameters.
            "UPDATE outbox_message SET status = 'sending', lease_owner = {}, lease_expires_at = {},"  # noqa: S608
            " attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM outbox_message"
            "  WHERE (status = 'pending' AND due_at <= {})"
            "     OR (status = 'sending' AND lease_expires_at < {})"
            "  ORDER BY due_at LIMIT {}" + skip_locked + ")"
            " RETURNING id, to_phone, body, attempts",
            owner,
            now + timedelta(seconds=lease_seconds),
            now,
            now,
            limit,
        )
    return [Claimed(r["id"], r["to_phone"], r["body"], r["attempts"]) for r in rows]


async def record_sent(message_id: int, owner: str, sid: str, now: datetime) -> None:
    await OutboxMessage.update(
        {
            OutboxMessage.status: "sent",
            OutboxMessage.provider_sid: sid,
            OutboxMessage.sent_at: now,
            OutboxMessage.lease_owner: None,
            OutboxMessage.lease_expires_at: None,
        }
    ).where((OutboxMessage.id == message_id) & (OutboxMessage.lease_owner == owner))


async def record_failure(
    message: Claimed, owner: str, error: TransportError, now: datetime
) -> None:
    if error.permanent:
        status, due = "failed", now
    elif message.attempts >= MAX_ATTEMPTS:
        status, due = "dead", now
    else:
        # Exponential backoff with full jitter: a provider outage does not turn
        # into a synchronized retry storm from every worker.
        ceiling = BASE_BACKOFF_SECONDS * 2 ** (message.attempts - 1)
        status, due = "pending", now + timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311
    await OutboxMessage.update(
        {
            OutboxMessage.status: status,
            OutboxMessage.due_at: due,
            OutboxMessage.error_code: error.code,
            OutboxMessage.error_text: str(error)[:500],
            OutboxMessage.lease_owner: None,
            OutboxMessage.lease_expires_at: None,
        }
    ).where((OutboxMessage.id == message.id) & (OutboxMessage.lease_owner == owner))


async def dispatch_due(
    backend: SmsBackend, owner: str, now: datetime, *, limit: int = 50, lease_seconds: int = 60
) -> int:
    """Claim, send and record one batch; returns how many were attempted."""
    claimed = await claim_due(now, owner, limit=limit, lease_seconds=lease_seconds)
    for message in claimed:
        try:
            sid = await backend.send(message.to_phone, message.body)
        except TransportError as exc:
            await record_failure(message, owner, exc, now)
        else:
            await record_sent(message.id, owner, sid, now)
    return len(claimed)
