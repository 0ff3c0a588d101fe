"""SMS codes do not stay readable in the outbox (issue 13.13).

A code message's body and payload carry the code in plaintext so the dispatcher
can send it. Once it is sent (or has failed for good), or once no code it could
carry is still valid, nobody needs it again: a delivery record (who was texted,
what kind of text, when, with what result) needs no secret. ``scrub_codes`` then
replaces the code with ``******`` in the body and the payload, so a database
dump, a replica or a staff page never shows a usable code. Until then the code
is as sensitive as its hash next to it in the party row, and lives minutes.

Scrubbed messages are not resent as they are: a carrier fallback or a clerk's
resend of a code message would text ``******`` (the couple asks for a new code).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from scheduler.db.engine import write_transaction
from scheduler.db.tables import OutboxMessage

# Templates whose payload carries a one-time code (they all name {{ code }}).
CODE_TEMPLATES = ("code", "waitlist_code", "lottery_code", "lottery_won", "waitlist_offer")
MASK = "******"
# A code message still waiting this long after it was queued is past any validity
# (SMS_VALIDITY_SECONDS is at most 10 h; codes themselves last minutes to hours).
STALE = timedelta(hours=10)


def is_scrubbed(row: dict[str, Any]) -> bool:
    return row["template"] in CODE_TEMPLATES and MASK in str(row.get("body") or "")


def _scrubbed(row: dict[str, Any]) -> tuple[str, str]:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload or "{}")
    code = str(payload.get("code") or "")
    body = str(row["body"])
    if code:
        body = body.replace(code, MASK)
        payload = payload | {"code": MASK}
    return body, json.dumps(payload, ensure_ascii=False)


async def scrub_codes(now: datetime, *, batch: int = 500) -> int:
    """Mask the codes of code messages that were sent, failed for good, or are stale."""
    rows = await (
        OutboxMessage.select(
            OutboxMessage.id, OutboxMessage.template, OutboxMessage.body, OutboxMessage.payload
        )
        .where(
            OutboxMessage.template.is_in(list(CODE_TEMPLATES))
            & (OutboxMessage.body != "")
            & OutboxMessage.body.not_like(f"%{MASK}%")
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
                {OutboxMessage.body: body, OutboxMessage.payload: payload}
            ).where(OutboxMessage.id == row["id"])
    return len(rows)
