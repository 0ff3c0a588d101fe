"""How the reports' tables are shown: their columns, the text of each cell (the same
on the page and in the CSV file, so that an export is exactly the table on screen)
and the SVG charts drawn from them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypedDict

from scheduler.domain.charts import Series, bar_chart, line_chart
from scheduler.domain.report_math import cell, csv_bytes, days_of, total_by
from scheduler.kernel.i18n import translate
from scheduler.usecases.reports.queries import Rows, Tables

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "bookings": {
        "days": ("day", "office", "slot_seats", "day_cap", "cap", "bookings", "utilisation_pct")
    },
    "lead-time": {
        "buckets": ("bucket", "bookings", "share_pct"),
        "offices": ("office", "bookings", "median_days", "p90_days"),
    },
    "cancellations": {
        "days": (
            "day",
            "office",
            "appointments",
            "cancelled",
            "no_show",
            "expired",
            "cancel_rate_pct",
            "no_show_rate_pct",
        )
    },
    "queue": {
        "days": ("day", "tickets", "called", "median_wait_min", "p90_wait_min"),
        "offices": ("day", "office", "tickets", "called", "median_wait_min", "p90_wait_min"),
    },
    "sms": {
        "days": (
            "day",
            "office",
            "messages",
            "delivered",
            "failed",
            "in_flight",
            "delivery_rate_pct",
        ),
        "errors": ("error_code", "failures", "share_pct"),
    },
    "reschedule": {
        "runs": (
            "run",
            "created",
            "kind",
            "dates",
            "offices",
            "status",
            "total",
            "moved",
            "needs_rebooking",
            "notified",
        )
    },
}
# Columns holding a code shown in words: column -> translation prefix.
_WORDS = {"kind": "admin.kind", "status": "admin.run.status"}


def header(locale: str, report: str, table: str) -> list[str]:
    return [translate(locale, f"reports.col.{c}") for c in COLUMNS[report][table]]


def display(locale: str, column: str, value: Any) -> str:
    if column in _WORDS and value:
        key = f"{_WORDS[column]}.{value}"
        text = translate(locale, key)
        return value if text == key else text
    return cell(value)


def cells(locale: str, report: str, table: str, rows: Rows) -> list[list[str]]:
    columns = COLUMNS[report][table]
    return [[display(locale, c, row.get(c)) for c in columns] for row in rows]


def csv_file(locale: str, report: str, table: str, rows: Rows) -> bytes:
    return csv_bytes(header(locale, report, table), cells(locale, report, table, rows))


def _per_office(rows: Rows, days: list[str], value: str, offices: Sequence[str]) -> list[Series]:
    found = {(r["office"], r["day"]): r[value] for r in rows}
    return [Series(code, [found.get((code, d)) for d in days]) for code in offices]


class _ChartText(TypedDict):
    chart_id: str
    title: str
    desc: str
    no_data: str


def _chart_text(locale: str, report: str, chart: str) -> _ChartText:
    return {
        "chart_id": f"chart-{report}-{chart}",
        "title": translate(locale, f"reports.chart.{report}.{chart}"),
        "desc": translate(locale, f"reports.chart.{report}.{chart}.desc"),
        "no_data": translate(locale, "reports.no_data"),
    }


def charts(
    locale: str, report: str, tables: Tables, start: date, end: date, offices: Sequence[str]
) -> list[str]:
    """The report's charts as SVG documents."""
    days = [d.isoformat() for d in days_of(start, end)]
    col: Callable[[str], str] = lambda key: translate(locale, f"reports.col.{key}")  # noqa: E731
    if report == "bookings":
        rows = tables["days"]
        # 100% at the top unless a day went over (blocked seats still held): then the
        # next multiple of 20, so that the quarter ticks stay whole numbers.
        highest = max([100.0] + [r["utilisation_pct"] or 0 for r in rows])
        return [
            line_chart(
                **_chart_text(locale, report, "utilisation"),
                labels=days,
                series=_per_office(rows, days, "utilisation_pct", offices),
                unit="%",
                top=20.0 * math.ceil(highest / 20),
            )
        ]
    if report == "lead-time":
        buckets = tables["buckets"]
        return [
            bar_chart(
                **_chart_text(locale, report, "buckets"),
                labels=[b["bucket"] for b in buckets],
                series=[Series(col("bookings"), [b["bookings"] for b in buckets])],
            )
        ]
    if report == "cancellations":
        rows = tables["days"]
        cancelled, no_show = total_by(rows, "day", "cancelled"), total_by(rows, "day", "no_show")
        return [
            bar_chart(
                **_chart_text(locale, report, "days"),
                labels=days,
                series=[
                    Series(col("cancelled"), [cancelled.get(d) for d in days]),
                    Series(col("no_show"), [no_show.get(d) for d in days]),
                ],
            )
        ]
    if report == "queue":
        pooled = {r["day"]: r for r in tables["days"]}
        return [
            line_chart(
                **_chart_text(locale, report, "waits"),
                labels=days,
                series=[
                    Series(col(k), [(pooled.get(d) or {}).get(k) for d in days])
                    for k in ("median_wait_min", "p90_wait_min")
                ],
            )
        ]
    if report == "sms":
        errors = tables["errors"]
        return [
            line_chart(
                **_chart_text(locale, report, "rate"),
                labels=days,
                series=_per_office(tables["days"], days, "delivery_rate_pct", offices),
                unit="%",
                top=100.0,
            ),
            bar_chart(
                **_chart_text(locale, report, "errors"),
                labels=[e["error_code"] or "—" for e in errors],
                series=[Series(col("failures"), [e["failures"] for e in errors])],
            ),
        ]
    runs = tables["runs"]
    return [
        bar_chart(
            **_chart_text(locale, report, "runs"),
            labels=[f"#{r['run']}" for r in runs],
            series=[
                Series(col(k), [r[k] for r in runs])
                for k in ("moved", "needs_rebooking", "notified")
            ],
        )
    ]
