"""The admin reports' queries: one function per report, each taking the offices, a
range of office-local dates (both inclusive) and returning its tables as plain rows.

Only columns that carry no personal data are read (office, service, slot day and
time, status, timestamps, events, outbox status and error code, run counters), so
the figures survive the retention job that erases names, ID numbers and phones.

Definitions (docs/decisions.md, "Reports"):
- a **booking** is an appointment still holding its seat (not cancelled, not an
  expired hold), counted on its slot's local day and at its slot's office;
- **lead time** runs from the booking (``created_at``) to the slot's start, for
  bookings that were confirmed;
- **queue wait** runs from check-in to the first call after it;
- an SMS belongs to the office of its appointment and to the local day it was queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.engine.postgres import PostgresEngine

from scheduler.db.engine import current_engine
from scheduler.db.replica import replica_read
from scheduler.db.tables import Office
from scheduler.domain.report_math import (
    SEATLESS,
    SMS_FAILED,
    SMS_IN_FLIGHT,
    bucket_names,
    lead_bucket,
    median,
    p90,
    parse_range,
    pct,
)
from scheduler.kernel.errors import DomainError

Rows = list[dict[str, Any]]
Tables = dict[str, Rows]


@dataclass(frozen=True)
class OfficeRef:
    id: int
    code: str
    timezone: str


async def resolve_offices(scope: frozenset[int] | None, codes: Sequence[str]) -> list[OfficeRef]:
    """The offices a report covers: the requested codes, or every office in scope
    (None: all). A code outside the scope reads as unknown (404), like any other
    office's object."""
    rows = await Office.select(Office.id, Office.code, Office.timezone).order_by(Office.code)
    visible = [
        OfficeRef(int(r["id"]), r["code"], r["timezone"])
        for r in rows
        if scope is None or r["id"] in scope
    ]
    wanted = sorted({c.strip() for c in codes if c.strip()})
    if not wanted:
        return visible
    by_code = {o.code: o for o in visible}
    if any(code not in by_code for code in wanted):
        raise DomainError("not-found")
    return [by_code[code] for code in wanted]


def _in(values: Sequence[Any]) -> str:
    return "(" + ", ".join("{}" for _ in values) + ")" if values else "(NULL)"


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _ts(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _postgres() -> bool:
    return isinstance(current_engine(), PostgresEngine)


def _seconds(later: str, earlier: str) -> str:
    """SQL: seconds from ``earlier`` to ``later`` (timestamps), computed by the database
    so that only one number per row travels (SQLite stores timestamps as UTC text)."""
    if _postgres():
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def _utc_hour(column: str, minutes: bool) -> str:
    """SQL: the UTC hour (or minute) of a timestamp as text, to group messages by."""
    if _postgres():
        fmt = "YYYY-MM-DD HH24:MI" if minutes else "YYYY-MM-DD HH24"
        return f"to_char({column} AT TIME ZONE 'UTC', '{fmt}')"
    return f"substr({column}, 1, {16 if minutes else 13})"


def _whole_hours(zones: Sequence[ZoneInfo], start: date, end: date) -> bool:
    """Whether every zone is a whole number of hours from UTC over the range (all of
    China is): then an hour of UTC lies within one local day."""
    moments = [datetime.combine(d, time(12), UTC) for d in (start, end)]
    moments += [datetime(y, m, 1, tzinfo=UTC) for y in {start.year, end.year} for m in (1, 7)]
    return all(
        (z.utcoffset(moment) or timedelta()) % timedelta(hours=1) == timedelta()
        for z in zones
        for moment in moments
    )


def _utc_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of local midnight on ``start`` and after ``end``."""
    lo = datetime.combine(start, time(), tz).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(), tz).astimezone(UTC)
    return lo, hi


def _codes(offices: Sequence[OfficeRef]) -> dict[int, str]:
    return {o.id: o.code for o in offices}


def _order(rows: Rows) -> Rows:
    return sorted(rows, key=lambda r: (r["day"], r["office"]))


async def bookings(offices: Sequence[OfficeRef], start: date, end: date) -> Tables:
    """Per day and office: seats of the day's slots, the office-day cap, bookings and
    utilisation (bookings over the tighter of the two caps)."""
    ids = [o.id for o in offices]
    codes = _codes(offices)
    where = f" IN {_in(ids)} AND {{}} <= s.day AND s.day <= {{}}"
    booked = await Office.raw(
        "SELECT s.office AS office, s.day AS day, COUNT(*) AS n FROM appointment a"  # noqa: S608 - placeholders only
        " JOIN slot s ON s.id = a.slot WHERE s.office"
        + where
        + f" AND a.status NOT IN {_in(SEATLESS)}"
        # A hold waiting for its seat (issue 13.3) has none yet: not a booking.
        " AND NOT a.awaiting_seat"
        " GROUP BY s.office, s.day",
        *ids,
        start,
        end,
        *SEATLESS,
    )
    # A blocked slot (closed by a blackout) offers no seat; a discouraged one its reduced cap.
    seats = await Office.raw(
        "SELECT s.office AS office, s.day AS day, SUM(CASE WHEN s.blocked THEN 0"  # noqa: S608
        " WHEN s.reduced_capacity IS NOT NULL AND s.reduced_capacity < s.capacity"
        " THEN s.reduced_capacity ELSE s.capacity END) AS seats FROM slot s WHERE s.office"
        + where
        + " GROUP BY s.office, s.day",
        *ids,
        start,
        end,
    )
    caps = await Office.raw(
        "SELECT s.office AS office, s.day AS day, s.capacity AS cap FROM office_day s"  # noqa: S608
        " WHERE s.office" + where,
        *ids,
        start,
        end,
    )
    cells: dict[tuple[int, date], dict[str, Any]] = {}

    def at(row: dict[str, Any]) -> dict[str, Any]:
        key = (int(row["office"]), _day(row["day"]))
        return cells.setdefault(key, {"slot_seats": 0, "day_cap": None, "bookings": 0})

    for row in seats:
        at(row)["slot_seats"] = int(row["seats"] or 0)
    for row in caps:
        at(row)["day_cap"] = int(row["cap"])
    for row in booked:
        at(row)["bookings"] = int(row["n"])
    rows = []
    for (office, day), c in cells.items():
        cap = c["slot_seats"] if c["day_cap"] is None else min(c["slot_seats"], c["day_cap"])
        rows.append(
            {"day": day.isoformat(), "office": codes[office], **c, "cap": cap}
            | {"utilisation_pct": pct(c["bookings"], cap)}
        )
    return {"days": _order(rows)}


async def lead_times(offices: Sequence[OfficeRef], start: date, end: date) -> Tables:
    """Confirmed bookings by days between booking and appointment."""
    ids = [o.id for o in offices]
    codes = _codes(offices)
    found = await Office.raw(
        f"SELECT s.office AS office, {_seconds('s.start_at', 'a.created_at')} AS lead"  # noqa: S608
        " FROM appointment a JOIN slot s ON s.id = a.slot"
        f" WHERE s.office IN {_in(ids)} AND {{}} <= s.day AND s.day <= {{}}"
        " AND a.confirmed_at IS NOT NULL",
        *ids,
        start,
        end,
    )
    per_office: dict[int, list[float]] = {o.id: [] for o in offices}
    counts = dict.fromkeys(bucket_names(), 0)
    for row in found:
        days = float(row["lead"]) / 86400
        per_office[int(row["office"])].append(days)
        counts[lead_bucket(days)] += 1
    total = len(found)
    return {
        "buckets": [
            {"bucket": name, "bookings": n, "share_pct": pct(n, total)}
            for name, n in counts.items()
        ],
        "offices": [
            {
                "office": codes[office],
                "bookings": len(values),
                "median_days": median(values),
                "p90_days": p90(values),
            }
            for office, values in per_office.items()
            if values
        ],
    }


async def cancellations(offices: Sequence[OfficeRef], start: date, end: date) -> Tables:
    """Per day and office: appointments (expired holds apart), cancellations, no-shows."""
    ids = [o.id for o in offices]
    codes = _codes(offices)
    found = await Office.raw(
        "SELECT s.office AS office, s.day AS day, a.status AS status, COUNT(*) AS n"  # noqa: S608
        " FROM appointment a JOIN slot s ON s.id = a.slot"
        f" WHERE s.office IN {_in(ids)} AND {{}} <= s.day AND s.day <= {{}}"
        " GROUP BY s.office, s.day, a.status",
        *ids,
        start,
        end,
    )
    cells: dict[tuple[int, date], dict[str, int]] = {}
    for row in found:
        key = (int(row["office"]), _day(row["day"]))
        c = cells.setdefault(key, {"all": 0, "cancelled": 0, "no_show": 0, "expired": 0})
        c["all"] += int(row["n"])
        if row["status"] in ("cancelled", "no_show", "expired"):
            c[row["status"]] += int(row["n"])
    rows = []
    for (office, day), c in cells.items():
        appointments = c["all"] - c["expired"]
        rows.append(
            {
                "day": day.isoformat(),
                "office": codes[office],
                "appointments": appointments,
                "cancelled": c["cancelled"],
                "no_show": c["no_show"],
                "expired": c["expired"],
                "cancel_rate_pct": pct(c["cancelled"], appointments),
                "no_show_rate_pct": pct(c["no_show"], appointments - c["cancelled"]),
            }
        )
    return {"days": _order(rows)}


async def queue_waits(offices: Sequence[OfficeRef], start: date, end: date) -> Tables:
    """Minutes from check-in to the first call, per day and office and per day overall."""
    ids = [o.id for o in offices]
    codes = _codes(offices)
    # The first call after the check-in (an earlier ticket's calls do not count).
    found = await Office.raw(
        "SELECT t.office AS office, t.day AS day,"  # noqa: S608 - placeholders only
        f" {_seconds('MIN(e.at)', 't.checked_in_at')} AS wait FROM queue_ticket t"
        " LEFT JOIN appointment_event e ON e.appointment = t.appointment"
        " AND e.kind = 'called' AND e.at >= t.checked_in_at"
        f" WHERE t.office IN {_in(ids)} AND {{}} <= t.day AND t.day <= {{}}"
        " GROUP BY t.id, t.office, t.day, t.checked_in_at",
        *ids,
        start,
        end,
    )
    per: dict[tuple[int, date], list[float | None]] = {}
    for row in found:
        wait = None if row["wait"] is None else float(row["wait"]) / 60
        per.setdefault((int(row["office"]), _day(row["day"])), []).append(wait)

    def figures(waits: list[float | None]) -> dict[str, Any]:
        called = [w for w in waits if w is not None]
        return {
            "tickets": len(waits),
            "called": len(called),
            "median_wait_min": median(called),
            "p90_wait_min": p90(called),
        }

    pooled: dict[date, list[float | None]] = {}
    for (_, day), waits in per.items():
        pooled.setdefault(day, []).extend(waits)
    return {
        "offices": _order(
            [
                {"day": day.isoformat(), "office": codes[office]} | figures(waits)
                for (office, day), waits in per.items()
            ]
        ),
        "days": [{"day": day.isoformat()} | figures(pooled[day]) for day in sorted(pooled)],
    }


async def sms(offices: Sequence[OfficeRef], start: date, end: date) -> Tables:
    """Per local day and office: messages, delivered, failed, still under way, and the
    delivery rate of those with an outcome; failures by error code."""
    ids = [o.id for o in offices]
    by_id = {o.id: o for o in offices}
    # Wide UTC bounds (every office's local day lies within a day of UTC), then exact.
    lo = datetime.combine(start - timedelta(days=1), time(), UTC)
    hi = datetime.combine(end + timedelta(days=2), time(), UTC)
    zones = {o.id: ZoneInfo(o.timezone) for o in offices}
    # Counted by the database per office, status, error code and UTC hour (minute
    # where a zone is off by half an hour); each hour is then put on its local day.
    minutes = not _whole_hours(list(zones.values()), start, end)
    bucket = _utc_hour("m.created_at", minutes)
    found = await Office.raw(
        f"SELECT a.office AS office, {bucket} AS hour, m.status AS status,"  # noqa: S608
        " m.error_code AS error_code, COUNT(*) AS n FROM outbox_message m JOIN appointment a"
        f" ON a.id = m.appointment_id WHERE a.office IN {_in(ids)}"
        " AND m.created_at >= {} AND m.created_at < {}"
        f" GROUP BY a.office, {bucket}, m.status, m.error_code",
        *ids,
        lo,
        hi,
    )
    cells: dict[tuple[int, date], dict[str, int]] = {}
    errors: dict[str, int] = {}
    for row in found:
        office, n = int(row["office"]), int(row["n"])
        text = str(row["hour"]).replace("T", " ")
        hour = datetime.strptime(text, "%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d %H")
        day = hour.replace(tzinfo=UTC).astimezone(zones[office]).date()
        if not start <= day <= end:
            continue
        c = cells.setdefault(
            (office, day), {"messages": 0, "delivered": 0, "failed": 0, "in_flight": 0}
        )
        c["messages"] += n
        status = row["status"]
        if status == "delivered":
            c["delivered"] += n
        elif status in SMS_FAILED:
            c["failed"] += n
            code = row["error_code"] or ""
            errors[code] = errors.get(code, 0) + n
        elif status in SMS_IN_FLIGHT:
            c["in_flight"] += n
    failures = sum(errors.values())
    rows = [
        {"day": day.isoformat(), "office": by_id[office].code}
        | c
        | {"delivery_rate_pct": pct(c["delivered"], c["delivered"] + c["failed"])}
        for (office, day), c in cells.items()
    ]
    return {
        "days": _order(rows),
        "errors": [
            {"error_code": code, "failures": n, "share_pct": pct(n, failures)}
            for code, n in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


async def reschedule_runs(
    offices: Sequence[OfficeRef], start: date, end: date, tz: ZoneInfo
) -> Tables:
    """Runs of blackouts touching the offices, started on a local day of the range
    (``tz``: the service's default time zone), with their counters."""
    ids = [o.id for o in offices]
    lo, hi = _utc_bounds(start, end, tz)
    runs = await Office.raw(
        "SELECT r.id AS id, r.created_at AS created_at, r.status AS status, r.total AS total,"  # noqa: S608
        " r.moved AS moved, r.needs_rebooking AS needs_rebooking, r.notified AS notified,"
        " b.id AS blackout, b.kind AS kind, b.start_date AS start_date, b.end_date AS end_date"
        " FROM reschedule_run r JOIN blackout b ON b.id = r.blackout"
        " WHERE r.created_at >= {} AND r.created_at < {} AND r.blackout IN"
        f" (SELECT bo.blackout FROM blackout_office bo WHERE bo.office IN {_in(ids)})"
        " ORDER BY r.created_at, r.id",
        lo,
        hi,
        *ids,
    )
    blackout_ids = sorted({int(r["blackout"]) for r in runs})
    where: dict[int, list[str]] = {}
    if blackout_ids:
        for row in await Office.raw(
            "SELECT bo.blackout AS blackout, o.code AS code FROM blackout_office bo"  # noqa: S608
            f" JOIN office o ON o.id = bo.office WHERE bo.blackout IN {_in(blackout_ids)}"
            " ORDER BY o.code",
            *blackout_ids,
        ):
            where.setdefault(int(row["blackout"]), []).append(row["code"])
    return {
        "runs": [
            {
                "run": int(r["id"]),
                "created": f"{_ts(r['created_at']).astimezone(tz):%Y-%m-%d %H:%M}",
                "kind": r["kind"],
                "dates": f"{_day(r['start_date']).isoformat()}/{_day(r['end_date']).isoformat()}",
                "offices": " ".join(where.get(int(r["blackout"]), [])),
                "status": r["status"],
                "total": int(r["total"]),
                "moved": int(r["moved"]),
                "needs_rebooking": int(r["needs_rebooking"]),
                "notified": int(r["notified"]),
            }
            for r in runs
        ]
    }


REPORTS = ("bookings", "lead-time", "cancellations", "queue", "sms", "reschedule")


async def run(
    name: str, offices: Sequence[OfficeRef], start: date, end: date, default_tz: str
) -> Tables:
    """The named report's tables (unknown name: 404)."""
    if name == "bookings":
        return await bookings(offices, start, end)
    if name == "lead-time":
        return await lead_times(offices, start, end)
    if name == "cancellations":
        return await cancellations(offices, start, end)
    if name == "queue":
        return await queue_waits(offices, start, end)
    if name == "sms":
        return await sms(offices, start, end)
    if name == "reschedule":
        return await reschedule_runs(offices, start, end, ZoneInfo(default_tz))
    raise DomainError("not-found")


@dataclass(frozen=True)
class Report:
    name: str
    start: date
    end: date
    offices: list[OfficeRef]
    tables: Tables


@replica_read
async def report(
    name: str,
    *,
    scope: frozenset[int] | None,
    codes: Sequence[str],
    raw_from: str | None,
    raw_to: str | None,
    now: datetime,
    default_tz: str,
) -> Report:
    """A report as asked for: unknown report or office 404, a bad range 422."""
    if name not in REPORTS:
        raise DomainError("not-found")
    today = now.astimezone(ZoneInfo(default_tz)).date()
    start, end = parse_range(raw_from, raw_to, today, around_today=True)
    offices = await resolve_offices(scope, codes)
    return Report(name, start, end, offices, await run(name, offices, start, end, default_tz))
