"""Pure rules of the admin reports: the date range, percentiles and rates, lead-time
buckets, and the cells of a table as the page, the CSV file and the API show them.

No I/O: scheduler/usecases/reports/queries.py reads the rows and calls these.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from scheduler.kernel.errors import DomainError

DEFAULT_DAYS = 30
# With no dates at all: a window around today, so upcoming bookings show (issue 14).
DEFAULT_BEFORE, DEFAULT_AFTER = 30, 30
MAX_DAYS = 366
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
# Lead time buckets in days: [low, high). The last one is open.
LEAD_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (0, 1),
    (1, 3),
    (3, 7),
    (7, 14),
    (14, 30),
    (30, None),
)
# Appointment statuses that no longer hold a seat (the slot counter gave it back).
SEATLESS = ("cancelled", "expired")
SMS_FAILED = ("failed", "undelivered", "dead")
SMS_IN_FLIGHT = ("pending", "sending", "sent")


def parse_range(
    raw_from: str | None, raw_to: str | None, today: date, *, around_today: bool = False
) -> tuple[date, date]:
    """``from``/``to`` (YYYY-MM-DD, both inclusive); by default the 30 days up to today,
    or with ``around_today`` (reports: bookings lie ahead) 30 days either side of it
    (with only ``from``: 30 days from it; only ``to``: 30 days up to it). More than 366
    days, an end before the start or a malformed date: 422."""
    start = _date(raw_from, "from")
    end = _date(raw_to, "to")
    if start is None and end is None and around_today:
        return today - timedelta(days=DEFAULT_BEFORE), today + timedelta(days=DEFAULT_AFTER)
    if end is None:
        end = today if start is None else start + timedelta(days=DEFAULT_DAYS - 1)
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise DomainError("invalid-input", field="to", reason="range-order")
    if (end - start).days + 1 > MAX_DAYS:
        raise DomainError("invalid-input", field="to", reason="range-too-long", days=MAX_DAYS)
    return start, end


def _date(raw: str | None, name: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        if len(raw.strip()) != 10:
            raise ValueError(raw)
        found = date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise DomainError("invalid-input", field=name, reason="report-date") from exc
    # No records before the service existed; and 9999-12-31 + 30 days would overflow.
    if not EARLIEST <= found <= LATEST:
        raise DomainError("invalid-input", field=name, reason="report-date")
    return found


def days_of(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def median(values: Sequence[float]) -> float | None:
    return round(float(statistics.median(values)), 1) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: a value that really occurred, so that
    "90% waited at most this long" is literally true."""
    if not values:
        return None
    ordered = sorted(values)
    return round(float(ordered[math.ceil(0.9 * len(ordered)) - 1]), 1)


def pct(part: int | float, whole: int | float) -> float | None:
    """A percentage with one decimal; None (shown as an empty cell) when nothing to divide."""
    return round(100.0 * part / whole, 1) if whole else None


def lead_bucket(days: float) -> str:
    for low, high in LEAD_BUCKETS:
        if high is None or days < high:
            return bucket_name(low, high)
    raise AssertionError("unreachable")  # pragma: no cover


def bucket_name(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def bucket_names() -> list[str]:
    return [bucket_name(low, high) for low, high in LEAD_BUCKETS]


def cell(value: Any) -> str:
    """One cell as text, the same on the page and in the CSV file."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


# A spreadsheet runs a cell starting with one of these as a formula (=HYPERLINK…,
# +cmd|…, @SUM…; tab and CR start one in some importers). OWASP's CSV injection advice.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_cell(value: Any) -> str:
    """A cell for a CSV file: text that a spreadsheet would run as a formula gets a
    leading ``'`` (shown as text, the value readable). A plain number such as -3
    is no formula and stays a number."""
    text = cell(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel opens Chinese text correctly. Every
    CSV export (reports, audit log) is written here, so every cell is defused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def total_by(rows: Iterable[Mapping[str, Any]], key: str, value: str) -> dict[Any, float]:
    """Sum of ``value`` per ``key`` (e.g. bookings per day over every office)."""
    totals: dict[Any, float] = {}
    for row in rows:
        totals[row[key]] = totals.get(row[key], 0) + (row[value] or 0)
    return totals
