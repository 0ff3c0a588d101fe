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
from dataclasses import dataclass
from typing import Any

from scheduler.db.tables import Party
from scheduler.kernel.errors import DomainError


@dataclass(frozen=True)
class Checked:
    """One code check: ``result`` is ``"locked"`` (no attempt left, nothing compared),
    ``"wrong"`` or ``"right"``; ``attempts`` the party's attempts spent after it."""

    result: str
    attempts: int

    @property
    def right(self) -> bool:
        return self.result == "right"


async def check_code(party: dict[str, Any], code_hash: str, limit: int) -> Checked:
    """Spend one of the party row's attempts, then compare ``code_hash`` (the hash of
    the code entered, computed as the owner's codes are, confirmation.Owner.code_hash)
    with the stored one as of that UPDATE (a resent code replaces it). Inside the
    caller's transaction."""
    rows = await (
        Party.update({Party.code_attempts: Party.code_attempts + 1})
        .where((Party.id == party["id"]) & (Party.code_attempts < limit))
        .returning(Party.code_attempts, Party.code_hash)
    )
    if not rows:
        return Checked("locked", limit)
    right = hmac.compare_digest(code_hash, str(rows[0]["code_hash"]))
    return Checked("right" if right else "wrong", int(rows[0]["code_attempts"]))


def refusal(checked: Checked) -> DomainError:
    """What a pending party hears after a failed ``check_code``."""
    if checked.result == "wrong":
        return DomainError("wrong-code", field="code")
    return DomainError("too-many-attempts")
