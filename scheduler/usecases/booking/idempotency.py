"""Idempotency-Key: a retried POST returns the stored result of the first one.

The record is written in the same transaction as the booking, so a result is
stored if and only if the booking committed. Records expire after
IDEMPOTENCY_TTL_HOURS (a job purges them).

The manage token of the response is stored sealed (AES-GCM with the data key,
scheduler/kernel/crypto.py, bound to the record's key), never in plaintext (issue 13.13):
a retry must get it back, so a hash would not do, and a copy of the table (a
backup, a read-only replica, a leaked dump) must not be a list of live tokens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.db.tables import IdempotencyRecord
from scheduler.kernel.crypto import SealError, open_sealed, seal
from scheduler.kernel.errors import DomainError
from scheduler.settings import Settings

SEALED = "manage_token_sealed"


@dataclass(frozen=True)
class Key:
    key: str
    request_hash: str


def make_key(scope: str, header: str | None, payload: Any) -> Key | None:
    if header is None:
        return None
    header = header.strip()
    if not 8 <= len(header) <= 128 or not header.isprintable():
        raise DomainError("invalid-input", field="Idempotency-Key", reason="idempotency-key")
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return Key(key=f"{scope}:{header}", request_hash=digest)


async def replay(key: Key, settings: Settings) -> tuple[int, dict[str, Any]] | None:
    """The stored (status, body) for this key, if any; a different request under the
    same key is refused rather than silently answered with another booking."""
    row = await IdempotencyRecord.select().where(IdempotencyRecord.key == key.key).first()
    if row is None:
        return None
    if row["request_hash"] != key.request_hash:
        raise DomainError("idempotency-key-reused")
    body: dict[str, Any] = json.loads(row["body"])
    if SEALED in body:
        try:
            body["manage_token"] = open_sealed(settings, _purpose(key), body.pop(SEALED))
        except SealError as exc:  # its key left DATA_KEYS within the TTL: an operator's slip
            raise DomainError("service-unavailable") from exc
    return int(row["status_code"]), body


def _purpose(key: Key) -> str:
    # Bound to the record: a sealed token copied into another record does not open.
    return f"idempotency:{key.key}"


async def record(
    key: Key, status: int, body: dict[str, Any], now: datetime, settings: Settings
) -> None:
    stored = dict(body)
    if "manage_token" in stored:
        token = stored.pop("manage_token")
        stored[SEALED] = seal(settings, _purpose(key), token)
    await IdempotencyRecord.insert(
        IdempotencyRecord(
            key=key.key,
            request_hash=key.request_hash,
            status_code=status,
            body=json.dumps(stored, default=str),
            created_at=now,
        )
    )


async def purge(now: datetime, ttl_hours: int) -> None:
    await IdempotencyRecord.delete().where(
        IdempotencyRecord.created_at < now - timedelta(hours=ttl_hours)
    )
