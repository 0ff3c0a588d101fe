"""No-show bans (issue 4.8): who may not book, until when; the admins' list and lift.

A ban is a stored row, written when a strike (a no-show, or a cancellation by the
couple) brings a person's count within the policy's window up to its threshold.
Stored rather than recomputed at each booking, because the end date told to the
couple must not move when an admin later edits the rule, when retention erases the
old appointments that caused it, or when a re-run counts differently; and because
the admins' list and the lift are then plain reads and one audited update.
A ban consumes the strikes that caused it: the next ban needs a fresh count.

Bans are keyed to the ID number's keyed hash (``party.id_hash``): a partner's ban
stops any couple they are part of, at any office.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit
from scheduler.db.audit import NamedActor
from scheduler.db.engine import write_transaction
from scheduler.db.policy_tables import Ban
from scheduler.db.records import PartyRecord
from scheduler.db.tables import Appointment
from scheduler.domain.identity import mask_id
from scheduler.domain.policy import Strike, ban_end, crossing
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import keyed_hash
from scheduler.settings import Settings
from scheduler.usecases.policy import policies

SYSTEM = NamedActor("system")
LIST_LIMIT = 500


# The same rule as a column of another read (two hashes, then now): a booking's one
# slot read carries it (scheduler/usecases/booking/checks.py), a query fewer per booking.
ACTIVE_UNTIL_SQL = (
    "(SELECT ends_at FROM ban WHERE id_hash IN ({}, {}) AND lifted_at IS NULL"
    " AND ends_at > {} ORDER BY ends_at DESC LIMIT 1)"
)


def ban_hashes(parties: list[tuple[str, str, str]], settings: Settings) -> list[str]:
    """The two hashes ``ACTIVE_UNTIL_SQL`` takes, for (role, id_type, number) parties."""
    return [keyed_hash(settings.secret_key, "id", f"{t}:{n}") for _, t, n in parties][:2]


def refuse_until(ends_at: datetime | str | None, timezone: str) -> None:
    """409 ``banned`` with the local date a ban in force ends (None: no ban)."""
    if ends_at is None:
        return
    if isinstance(ends_at, str):  # SQLite types a subquery's column as text
        ends_at = datetime.fromisoformat(ends_at)
    until = ends_at.astimezone(ZoneInfo(timezone)).date().isoformat()
    raise DomainError("banned", reason="until", banned_until=until)


# --- evaluation -------------------------------------------------------------------------

# No-shows count at their slot's time; cancellations at the time the couple
# cancelled, and only those the couple made: not the office's, not one after a
# blackout left them without a seat (needs_rebooking). Two plain statements, not a
# UNION: SQLite keeps the column types (timestamps) of plain columns only.
_NO_SHOWS_SQL = (
    "SELECT a.id, a.office, s.start_at AS at FROM party p"
    " JOIN appointment a ON a.id = p.appointment JOIN slot s ON s.id = a.slot"
    " WHERE p.id_hash = {} AND a.status = 'no_show' AND s.start_at > {}"
)
_CANCELLED_SQL = (
    "SELECT a.id, a.office, a.cancelled_at AS at FROM party p"
    " JOIN appointment a ON a.id = p.appointment"
    " WHERE p.id_hash = {} AND a.status = 'cancelled' AND a.cancelled_at > {}"
    " AND EXISTS (SELECT 1 FROM appointment_event e WHERE e.appointment = a.id"
    "  AND e.kind = 'cancelled' AND e.actor = 'couple')"
    " AND NOT EXISTS (SELECT 1 FROM appointment_event e WHERE e.appointment = a.id"
    "  AND e.kind = 'needs_rebooking')"
)
_BANS_OF_SQL = "SELECT starts_at, lifted_at FROM ban WHERE id_hash = {}"


async def evaluate(id_hash: str, now: datetime) -> dict[str, Any] | None:
    """Write a ban for this person if their strikes cross the rule (idempotent: two
    processes evaluating the same strike write one row). Returns the new ban."""
    rule = (await policies.current()).no_show()
    if not rule.enabled:
        return None
    earlier = await Ban.raw(_BANS_OF_SQL, id_hash)
    since = max((b["lifted_at"] or b["starts_at"] for b in earlier), default=None)
    # Older strikes cannot cause a ban still in force now.
    floor = now - timedelta(days=rule.window_days + rule.ban_days)
    floor = max(floor, since) if since is not None else floor
    strikes = [
        Strike(r["at"], kind, r["id"], r["office"])
        for kind, sql in (("no_show", _NO_SHOWS_SQL), ("cancelled", _CANCELLED_SQL))
        for r in await Ban.raw(sql, id_hash, floor)
    ]
    crossed = crossing(strikes, rule)
    if crossed is None or ban_end(crossed.at, rule) <= now:
        return None
    count = sum(
        1
        for s in strikes
        if s.kind == crossed.kind
        and s.at <= crossed.at
        and crossed.at - s.at <= timedelta(days=rule.window_days)
    )
    party = await _party(crossed.appointment_id, id_hash)
    ban = Ban(
        key=f"{id_hash}:{crossed.kind}:{crossed.appointment_id}",
        id_hash=id_hash,
        id_type=party["id_type"],
        id_masked=party["masked"],
        office=crossed.office_id,
        appointment_id=crossed.appointment_id,
        kind=crossed.kind,
        strikes=count,
        starts_at=crossed.at,
        ends_at=ban_end(crossed.at, rule),
    )
    inserted = await Ban.insert(ban).on_conflict(action="DO NOTHING").returning(Ban.id)
    if not inserted:
        return None
    after = {"kind": crossed.kind, "strikes": count, "ends_at": ban.ends_at.isoformat()}
    await audit.record(
        SYSTEM,
        "ban.create",
        office_id=crossed.office_id,
        object_type="ban",
        object_id=inserted[0]["id"],
        after=after | {"id": party["masked"]},
        now=now,
    )
    return {"id": inserted[0]["id"], **after}


async def after_cancel(parties: Iterable[PartyRecord], now: datetime) -> None:
    """A couple's cancellation counts at once (inside its transaction), not a job run later."""
    for id_hash in sorted({p.id_hash for p in parties if p.id_hash}):
        await evaluate(id_hash, now)


async def _party(appointment_id: int, id_hash: str) -> dict[str, str]:
    rows = await Appointment.raw(
        "SELECT * FROM party WHERE appointment = {} AND id_hash = {}", appointment_id, id_hash
    )
    row = rows[0] if rows else {}
    # Sealed ID numbers (retention, encryption at rest) keep a masked copy; use it.
    masked = row.get("id_masked") or mask_id(row.get("id_number") or "")
    return {"id_type": row.get("id_type", ""), "masked": masked[:32]}


# --- admins -----------------------------------------------------------------------------


def _scope_sql(scope: frozenset[int] | None) -> tuple[str, list[int]]:
    if scope is None:
        return "", []
    ids = sorted(scope) or [-1]
    return " AND b.office IN (" + ", ".join("{}" for _ in ids) + ")", ids


def _view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    tz = ZoneInfo(row["timezone"])
    return {
        "id": row["id"],
        "id_type": row["id_type"],
        "id_number": row["id_masked"],
        "office": row["office_code"],
        "kind": row["kind"],
        "strikes": row["strikes"],
        "starts_at": row["starts_at"].isoformat(),
        "ends_at": row["ends_at"].isoformat(),
        "ends_on": row["ends_at"].astimezone(tz).date().isoformat(),
        "active": row["lifted_at"] is None and row["ends_at"] > now,
        "lifted_at": row["lifted_at"].isoformat() if row["lifted_at"] else None,
        "lifted_by": row["lifted_by"],
    }


_LIST_SQL = (
    "SELECT b.*, o.code AS office_code, o.timezone FROM ban b JOIN office o ON o.id = b.office"
    " WHERE 1 = 1"
)


async def current_bans(scope: frozenset[int] | None, now: datetime) -> list[dict[str, Any]]:
    """Bans in force that arose at the offices of ``scope`` (None: all), ending soonest first."""
    where, args = _scope_sql(scope)
    rows = await Ban.raw(
        _LIST_SQL + where + " AND b.lifted_at IS NULL AND b.ends_at > {}"
        " ORDER BY b.ends_at, b.id LIMIT {}",
        *args,
        now,
        LIST_LIMIT,
    )
    return [_view(r, now) for r in rows]


async def lift(
    ban_id: int,
    *,
    scope: frozenset[int] | None,
    actor: audit.Actor,
    now: datetime,
    ip: str | None = None,
) -> dict[str, Any]:
    """End a ban now (audited). Another office's ban, or none: 404; lifted or over: 409."""
    where, args = _scope_sql(scope)
    async with write_transaction():
        rows = await Ban.raw(_LIST_SQL + where + " AND b.id = {}", *args, ban_id)
        if not rows:
            raise DomainError("not-found")
        before = _view(rows[0], now)
        if not before["active"]:
            raise DomainError("bad-transition", reason="ban-over")
        changed = await (
            Ban.update({Ban.lifted_at: now, Ban.lifted_by: actor.username[:64]})
            .where((Ban.id == ban_id) & Ban.lifted_at.is_null())
            .returning(Ban.id)
        )
        if not changed:
            raise DomainError("bad-transition", reason="ban-over")
        after = before | {
            "active": False,
            "lifted_at": now.isoformat(),
            "lifted_by": actor.username,
        }
        await audit.record(
            actor,
            "ban.lift",
            office_id=rows[0]["office"],
            object_type="ban",
            object_id=ban_id,
            before=before,
            after=after,
            ip=ip,
            now=now,
        )
    return after
