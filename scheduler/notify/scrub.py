"""SMS codes and manage codes do not stay readable in the outbox (issue 13.13).

A code message's body and payload carry the code in plaintext so the dispatcher
can send it (a confirmation text may carry the manage code or link, issue 14).
Once it is sent (or has failed for good), or once no code it could carry is still
valid, nobody needs it again: a delivery record (who was texted, what kind of
text, when, with what result) needs no secret. ``scrub_codes`` then replaces the
secrets with ``******`` in the body and the payload and marks the row
``scrubbed``, so a database dump, a replica or a staff page never shows a usable
code. Until then the code is as sensitive as its hash next to it in the party
row, and lives minutes.

Masked texts are not resent as they are: a carrier fallback or a clerk's resend
would text ``******`` (the couple asks for a new code; a clerk phones).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from scheduler.db.engine import write_transaction
from scheduler.db.tables import OutboxMessage

# Templates whose payload carries a secret, and the payload fields that are secret.
CODE_TEMPLATES = (
    "code",
    "waitlist_code",
    "lottery_code",
    "lottery_won",
    "waitlist_offer",
    "manage_recovery",
    "confirmed",
)
SECRETS = ("code", "manage_code", "manage_link")
MASK = "******"
# A code message still waiting this long after it was queued is past any validity
# (SMS_VALIDITY_SECONDS is at most 10 h; codes themselves last minutes to hours).
STALE = timedelta(hours=10)


def is_scrubbed(row: dict[str, Any]) -> bool:
    """Whether a secret was masked in this text: resending it would send the mask."""
    return bool(row.get("scrubbed")) and MASK in str(row.get("body") or "")


def _scrubbed(row: dict[str, Any]) -> tuple[str, str]:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload or "{}")
    body = str(row["body"])
    for name in SECRETS:
        secret = str(payload.get(name) or "")
        if secret:
            body = body.replace(secret, MASK)
            payload = payload | {name: MASK}
    return body, json.dumps(payload, ensure_ascii=False)


async def scrub_codes(now: datetime, *, batch: int = 500) -> int:
    """Mask the secrets of messages that were sent, failed for good, or are stale.
    A confirmation text without a manage code is masked too: ``******`` marks it done."""
    rows = await (
        OutboxMessage.select(
            OutboxMessage.id, OutboxMessage.template, OutboxMessage.body, OutboxMessage.payload
        )
        .where(
            OutboxMessage.template.is_in(list(CODE_TEMPLATES))
            & OutboxMessage.scrubbed.eq(False)
            & (OutboxMessage.body != "")
            & (
                OutboxMessage.status.not_in(["pending", "sending"])
                | (OutboxMessage.created_at < now - STALE)
            )
        )
        .limit(batch)
    )
    if not rows:
        return 0
    async with write_transaction():
        for row in rows:
            body, payload = _scrubbed(row)
            await OutboxMessage.update(
                {
                    OutboxMessage.body: body,
                    OutboxMessage.payload: payload,
                    OutboxMessage.scrubbed: True,
                }
            ).where(OutboxMessage.id == row["id"])
    return len(rows)
