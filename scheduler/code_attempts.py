"""Counting SMS-code attempts so that the limit holds under parallel requests.

Every code check (booking, waiting list, lottery) first spends one attempt with a
conditional UPDATE (``code_attempts < limit ... RETURNING``) and only then compares
the code. Read-compare-increment let 40 parallel wrong codes be checked 14 times
against a limit of 5 on PostgreSQL: every request read ``attempts = 0`` before any
increment committed. The UPDATE takes the party row's lock and re-checks the
condition against the committed value, so at most ``limit`` checks ever happen per
party, whatever the concurrency (SQLite: one writer at a time anyway).

The right code costs an attempt too: one rule, no second statement to give it back.
"""

from __future__ import annotations

import hmac
from typing import Any

from piccolo.table import Table

from scheduler.errors import DomainError


async def spend_attempt(table: type[Table], party_id: int, limit: int) -> bool:
    """Count one attempt on party row ``party_id`` if it has one left; False if not.
    ``table`` has ``id`` and ``code_attempts`` columns. Inside the caller's transaction."""
    # Piccolo's Table type does not declare the columns the callers' tables have.
    attempts: Any = table.code_attempts  # type: ignore[attr-defined]
    row_id: Any = table.id  # type: ignore[attr-defined]
    rows = await (
        table.update({attempts: attempts + 1})
        .where((row_id == party_id) & (attempts < limit))
        .returning(row_id)
    )
    return bool(rows)


async def check_code(table: type[Table], party: dict[str, Any], code_hash: str, limit: int) -> str:
    """Spend an attempt, then compare: ``"locked"`` (no attempt left, nothing
    compared), ``"wrong"`` or ``"right"``. ``code_hash`` is the hash of the code
    entered, computed as the caller stored it."""
    if not await spend_attempt(table, party["id"], limit):
        return "locked"
    return "right" if hmac.compare_digest(code_hash, party["code_hash"]) else "wrong"


def refusal(checked: str) -> DomainError:
    """What a pending party hears after a failed ``check_code``."""
    if checked == "wrong":
        return DomainError("wrong-code", field="code")
    return DomainError("too-many-attempts")
