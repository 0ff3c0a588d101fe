"""Reading the audit log: filters (actor, office, action, local date range), pages of
entries newest first, scoped to the reader's offices, and the CSV export.

An entry belongs to an office when it names it (``office_id``). An entry naming no
office (an action over several offices, or one that did not record its office)
belongs to the offices whose codes its before/after values name (use cases record
``"offices": [codes]`` for actions over several offices), and to the offices of any
other entry about the same object: lifting a blackout belongs where declaring it
did, a staff member's sign-ins where their account was created for.
Everything else without an office (policy changes, superadmin accounts) is seen
by superadmins only. The values are shown as they were stored: use cases record
masked or no personal data, so nothing here needs unmasking or masking again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.replica import replica_read
from scheduler.db.tables import AuditLog, Office
from scheduler.domain.report_math import csv_bytes

PAGE_SIZE = 50
EXPORT_LIMIT = 50_000
CSV_COLUMNS = (
    "at",
    "actor",
    "action",
    "office",
    "object_type",
    "object_id",
    "before",
    "after",
    "ip",
)


@dataclass(frozen=True)
class AuditQuery:
    start: date
    end: date
    actor: str | None = None
    office: int | None = None
    action: str | None = None
    page: int = 1


def _in(values: Sequence[Any]) -> str:
    return "(" + ", ".join("{}" for _ in values) + ")" if values else "(NULL)"


def _mentions(alias: str, codes: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL: the entry's before or after names one of these office codes (as a JSON
    string, e.g. ``"offices": ["GZ-TH", "SZ-FT"]``)."""
    parts, args = [], []
    for code in codes:
        escaped = code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f'%"{escaped}"%'
        for column in ("after", "before"):
            parts.append(f"CAST({alias}.{column} AS TEXT) LIKE {{}} ESCAPE '\\'")
            args.append(pattern)
    return "(" + (" OR ".join(parts) or "1 = 0") + ")", args


async def _codes_of(office_ids: Iterable[int]) -> list[str]:
    ids = sorted(office_ids)
    rows = await Office.select(Office.code).where(Office.id.is_in(ids or [-1]))
    return sorted(r["code"] for r in rows)


def _belongs(office_ids: Iterable[int], codes: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL: the entry belongs to one of these offices (see the module's docstring)."""
    ids = sorted(office_ids)
    held = _in(ids)
    mine, mine_args = _mentions("l", codes)
    theirs, theirs_args = _mentions("p", codes)
    sql = (
        f"(l.office_id IN {held} OR (l.office_id IS NULL AND ({mine}"  # noqa: S608 - placeholders only
        " OR EXISTS (SELECT 1 FROM audit_log p WHERE p.object_type = l.object_type"
        " AND p.object_id = l.object_id AND p.id <> l.id"
        f" AND (p.office_id IN {held} OR {theirs})))))"
    )
    return sql, [*ids, *mine_args, *ids, *theirs_args]


async def _where(
    query: AuditQuery | None, scope: frozenset[int] | None, tz: ZoneInfo
) -> tuple[str, list[Any]]:
    parts: list[str] = []
    args: list[Any] = []
    if scope is not None:
        sql, more = _belongs(scope, await _codes_of(scope))
        parts.append(sql)
        args += more
    if query is not None:
        lo = datetime.combine(query.start, time(), tz).astimezone(UTC)
        hi = datetime.combine(query.end + timedelta(days=1), time(), tz).astimezone(UTC)
        parts.append("l.at >= {} AND l.at < {}")
        args += [lo, hi]
        if query.office is not None:
            sql, more = _belongs([query.office], await _codes_of([query.office]))
            parts.append(sql)
            args += more
        if query.actor:
            parts.append("l.actor_name = {}")
            args.append(query.actor)
        if query.action:
            parts.append("l.action = {}")
            args.append(query.action)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """(field, before, after) for every field either side names, in a stable order."""
    old = before if isinstance(before, dict) else ({"": before} if before is not None else {})
    new = after if isinstance(after, dict) else ({"": after} if after is not None else {})
    keys = list(old) + [k for k in new if k not in old]
    return [(k, _text(old.get(k)), _text(new.get(k))) for k in keys]


def _view(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    moment = row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"])
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    before, after = _json(row["before"]), _json(row["after"])
    return {
        "id": int(row["id"]),
        "at": f"{moment.astimezone(tz):%Y-%m-%d %H:%M:%S}",
        "actor": row["actor_name"],
        "action": row["action"],
        "office": row["office_code"] or "",
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "before": before,
        "after": after,
        "changes": changes(before, after),
        "ip": row["ip"] or "",
    }


_SELECT = (
    "SELECT l.id AS id, l.at AS at, l.actor_name AS actor_name, l.action AS action,"
    " l.object_type AS object_type, l.object_id AS object_id, l.before AS before,"
    " l.after AS after, l.ip AS ip, o.code AS office_code"
    " FROM audit_log l LEFT JOIN office o ON o.id = l.office_id"
)


@replica_read
async def search(
    query: AuditQuery, scope: frozenset[int] | None, tz: ZoneInfo
) -> tuple[list[dict[str, Any]], int]:
    """One page of matching entries, newest first, and how many match in all."""
    where, args = await _where(query, scope, tz)
    counted = await AuditLog.raw("SELECT COUNT(*) AS n FROM audit_log l" + where, *args)  # noqa: S608
    rows = await AuditLog.raw(
        _SELECT + where + " ORDER BY l.at DESC, l.id DESC LIMIT {} OFFSET {}",
        *args,
        PAGE_SIZE,
        (max(query.page, 1) - 1) * PAGE_SIZE,
    )
    return [_view(r, tz) for r in rows], int(counted[0]["n"])


@replica_read
async def export(
    query: AuditQuery, scope: frozenset[int] | None, tz: ZoneInfo, header: Sequence[str]
) -> bytes:
    """Every matching entry (up to EXPORT_LIMIT), newest first, as CSV under ``header``
    (the translated names of CSV_COLUMNS)."""
    where, args = await _where(query, scope, tz)
    rows = await AuditLog.raw(
        _SELECT + where + " ORDER BY l.at DESC, l.id DESC LIMIT {}", *args, EXPORT_LIMIT
    )
    views = [_view(r, tz) for r in rows]
    return csv_bytes(
        header,
        (
            [
                v["at"],
                v["actor"],
                v["action"],
                v["office"],
                v["object_type"],
                v["object_id"],
                _text(v["before"]),
                _text(v["after"]),
                v["ip"],
            ]
            for v in views
        ),
    )


@replica_read
async def choices(scope: frozenset[int] | None) -> dict[str, list[str]]:
    """The actions and actors the reader can filter by (those in their entries)."""
    where, args = await _where(None, scope, ZoneInfo("UTC"))
    actions = await AuditLog.raw(
        "SELECT DISTINCT l.action AS v FROM audit_log l" + where + " ORDER BY v",  # noqa: S608
        *args,
    )
    actors = await AuditLog.raw(
        "SELECT DISTINCT l.actor_name AS v FROM audit_log l" + where + " ORDER BY v",  # noqa: S608
        *args,
    )
    return {"actions": [r["v"] for r in actions], "actors": [r["v"] for r in actors]}
