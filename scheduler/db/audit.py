"""The audit log: who did what, when, to which object, before and after.

Call ``record`` inside the transaction of the change it describes, so that a
change and its audit row are committed together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from scheduler.db.tables import AuditLog


class Actor(Protocol):
    """Whoever acts: a signed-in staff member, or a named actor without an account."""

    @property
    def id(self) -> int | None: ...

    @property
    def username(self) -> str: ...


@dataclass(frozen=True)
class NamedActor:
    """An actor without a staff row: a failed login's typed username, the command line."""

    username: str
    id: int | None = None


async def record(
    actor: Actor | None,
    action: str,
    *,
    office_id: int | None = None,
    object_type: str,
    object_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
    now: datetime,
) -> None:
    await AuditLog.insert(
        AuditLog(
            actor_id=actor.id if actor else None,
            actor_name=(actor.username if actor else "")[:64],
            action=action,
            office_id=office_id,
            object_type=object_type,
            object_id=str(object_id)[:64],
            before=before,
            after=after,
            at=now,
            ip=(ip or None) and ip[:45],
        )
    )


async def entries(object_type: str, object_id: str | int) -> list[dict[str, Any]]:
    """The audit rows of one object, oldest first (for views and tests)."""
    rows: list[dict[str, Any]] = (
        await AuditLog.select()
        .where((AuditLog.object_type == object_type) & (AuditLog.object_id == str(object_id)))
        .order_by(AuditLog.id)
        .output(load_json=True)
    )
    return rows
