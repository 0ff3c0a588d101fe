"""Readiness: can this process serve? Database reachable, schema current, outbox moving.

Liveness is deliberately not here: a live process answers ``/health/live``
without touching the database, so an orchestrator restarts only processes that
are stuck, not every process while PostgreSQL restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from piccolo.apps.migrations.tables import Migration

from scheduler.db.piccolo_app import APP_CONFIG
from scheduler.db.tables import OutboxMessage
from scheduler.observability.metrics import OutboxStats
from scheduler.usecases.calendar import holidays as holiday_calendar

CHECK_TIMEOUT_SECONDS = 2.0
_UNSENT = ("pending", "sending")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@cache
def expected_migrations() -> frozenset[str]:
    """Migration IDs shipped with this code (read once: the code does not change)."""
    folder = Path(APP_CONFIG.resolved_migrations_folder_path)
    ids = set()
    for path in folder.glob("scheduler_*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("ID = "):
                ids.add(line.split("=", 1)[1].strip().strip("'\""))
    return frozenset(ids)


async def _database() -> Check:
    await OutboxMessage.raw("SELECT 1")
    return Check("database", True, "reachable")


async def _migrations() -> Check:
    ran = set(await Migration.get_migrations_which_ran(app_name=APP_CONFIG.app_name))
    missing = sorted(expected_migrations() - ran)
    if missing:
        return Check("migrations", False, f"{len(missing)} not applied, first {missing[0]}")
    return Check("migrations", True, f"{len(ran)} applied")


async def _backlog(now: datetime, limit: int) -> Check:
    due = await OutboxMessage.count().where(
        OutboxMessage.status.is_in(list(_UNSENT)) & (OutboxMessage.due_at <= now)
    )
    return Check("outbox", due <= limit, f"{due} due and unsent (limit {limit})")


async def _holidays(now: datetime) -> Check:
    """Always ok (a missing notice must not take the service out of rotation), but
    says which years the booking window reaches with the statutory days only."""

    calendar = await holiday_calendar.current()
    missing = await holiday_calendar.missing_years(now, calendar)
    if not missing:
        years = ", ".join(map(str, calendar.notices))
        return Check("holidays", True, f"notices loaded for {years}")
    detail = "; ".join(
        f"warning: no State Council holiday notice for {m['year']}, the booking window reaches"
        f" {m['reaches']} ({', '.join(m['offices'])}): statutory holidays only, no make-up days"
        for m in missing
    )
    return Check("holidays", True, detail)


async def readiness(now: datetime, backlog_limit: int) -> list[Check]:
    """Each check bounded in time: a hung database must not hang the probe."""
    probes: list[tuple[str, Callable[[], Awaitable[Check]]]] = [
        ("database", _database),
        ("migrations", _migrations),
        ("outbox", lambda: _backlog(now, backlog_limit)),
        ("holidays", lambda: _holidays(now)),
    ]
    checks: list[Check] = []
    for name, probe in probes:
        if checks and not checks[0].ok:
            checks.append(Check(name, False, "database unreachable"))
            continue
        try:
            checks.append(await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS))
        except Exception as exc:  # any failure means "not ready", with the reason
            checks.append(Check(name, False, type(exc).__name__))
    return checks


async def outbox_stats(now: datetime) -> OutboxStats:
    depth = await OutboxMessage.raw(
        "SELECT status, COUNT(*) AS n FROM outbox_message GROUP BY status"
    )
    oldest = await OutboxMessage.raw(
        "SELECT MIN(due_at) AS oldest FROM outbox_message WHERE status IN ('pending', 'sending')"
        " AND due_at <= {}",
        now,
    )
    results = await OutboxMessage.raw(
        "SELECT status, COALESCE(error_code, '') AS code, COUNT(*) AS n FROM outbox_message"
        " WHERE created_at >= {} GROUP BY status, COALESCE(error_code, '')",
        now - timedelta(hours=24),
    )
    oldest_at = oldest[0]["oldest"] if oldest else None
    if isinstance(oldest_at, str):  # SQLite returns text for an aggregate
        oldest_at = datetime.fromisoformat(oldest_at)
    return OutboxStats(
        depth_by_status={row["status"]: row["n"] for row in depth},
        oldest_pending_at=oldest_at,
        results={(row["status"], row["code"] or "none"): row["n"] for row in results},
    )
