"""The reports' pure parts, without a database: date ranges, percentiles and rates,
lead-time buckets, CSV cells, and the SVG charts (accessible, proportional, escaped)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest

from scheduler.domain.charts import Series, bar_chart, line_chart, nice_ceiling
from scheduler.domain.report_math import (
    bucket_names,
    cell,
    csv_bytes,
    lead_bucket,
    median,
    p90,
    parse_range,
    pct,
)
from scheduler.kernel.errors import DomainError

TODAY = date(2026, 11, 28)


def test_default_range_is_the_last_30_days() -> None:
    assert parse_range(None, None, TODAY) == (TODAY - timedelta(days=29), TODAY)
    assert parse_range("", " ", TODAY) == (TODAY - timedelta(days=29), TODAY)
    window = (TODAY - timedelta(days=30), TODAY + timedelta(days=30))  # reports: around today
    assert parse_range(None, None, TODAY, around_today=True) == window
    assert parse_range("", " ", TODAY, around_today=True) == window
    assert parse_range("2026-01-01", None, TODAY) == (date(2026, 1, 1), date(2026, 1, 30))
    assert parse_range(None, "2026-02-10", TODAY) == (date(2026, 1, 12), date(2026, 2, 10))
    assert parse_range("2026-02-10", "2026-02-10", TODAY) == (date(2026, 2, 10),) * 2


@pytest.mark.parametrize(
    ("raw_from", "raw_to", "field", "reason"),
    [
        ("2026-03-02", "2026-03-01", "to", "range-order"),
        ("2025-01-01", "2026-01-02", "to", "range-too-long"),
        ("2026-02-30", None, "from", "report-date"),
        (None, "20260101", "to", "report-date"),
        ("2026-1-01", None, "from", "report-date"),
        ("2026-01-01T00:00", None, "from", "report-date"),
    ],
)
def test_bad_ranges(raw_from: str | None, raw_to: str | None, field: str, reason: str) -> None:
    with pytest.raises(DomainError) as caught:
        parse_range(raw_from, raw_to, TODAY)
    assert caught.value.status == 422 and caught.value.field == field
    assert caught.value.key == f"error.invalid-input.{reason}"


def test_366_days_is_the_longest_range() -> None:
    assert parse_range("2025-01-01", "2026-01-01", TODAY)[1] == date(2026, 1, 1)


def test_percentiles_and_rates() -> None:
    assert median([]) is None and p90([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([1.0, 2.0, 3.0, 10.0]) == 2.5
    # Nearest rank: of 10 values the 9th smallest, of 11 the 10th.
    assert p90([float(v) for v in range(1, 11)]) == 9.0
    assert p90([float(v) for v in range(1, 12)]) == 10.0
    assert p90([7.0]) == 7.0
    assert pct(1, 3) == 33.3 and pct(0, 0) is None and pct(5, 5) == 100.0


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        *[(0, "0-1"), (0.99, "0-1"), (1, "1-3"), (2.9, "1-3"), (6.99, "3-7"), (13, "7-14")],
        *[(29.9, "14-30"), (30, "30+"), (400, "30+"), (-0.1, "0-1")],
    ],
)
def test_lead_buckets(days: float, bucket: str) -> None:
    assert lead_bucket(days) == bucket
    assert bucket in bucket_names()


def test_csv_has_a_bom_and_the_cells_of_the_page() -> None:
    data = csv_bytes(["日期", "利用率 %"], [["2026-11-28", 12.345], ["2026-11-29", None]])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["日期", "利用率 %"], ["2026-11-28", "12.3"], ["2026-11-29", ""]]
    assert cell(None) == "" and cell(3) == "3" and cell(2.0) == "2.0" and cell("a,b") == "a,b"


def _bars(svg: str) -> list[tuple[float, str]]:
    return [
        (float(h), v)
        for h, v in re.findall(
            r'<rect class="bar"[^>]*height="([\d.]+)"[^>]*data-value="([^"]+)"', svg
        )
    ]


def test_bar_chart_is_accessible_and_proportional() -> None:
    svg = bar_chart(
        chart_id="c1",
        title="取消 <与> 爽约",
        desc="每天两根柱",
        labels=["11-01", "11-02"],
        series=[Series("取消", [4, 2]), Series("爽约", [1, 0])],
    )
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">取消 &lt;与&gt; 爽约</title>' in svg
    assert '<desc id="c1-desc">每天两根柱</desc>' in svg
    bars = _bars(svg)
    assert [v for _, v in bars] == ["4", "2", "1", "0"]
    heights = [h for h, _ in bars]
    assert heights[0] == pytest.approx(2 * heights[1]) and heights[0] == pytest.approx(
        4 * heights[2]
    )
    assert heights[3] == 0
    # Text labels: categories, legend, values as tooltips.
    assert (
        ">11-01</text>" in svg and ">取消</text>" in svg and "<title>11-01 · 取消: 4</title>" in svg
    )


def test_line_chart_breaks_at_missing_values_and_caps_the_axis() -> None:
    svg = line_chart(
        chart_id="c2",
        title="利用率",
        desc="d",
        labels=["a", "b", "c", "d"],
        series=[Series("GZ-TH", [50, None, 80, 120])],
        unit="%",
        top=100,
    )
    assert svg.count("<polyline") == 1  # a-b gap: the first point stands alone
    assert svg.count('class="point"') == 3
    assert ">100%</text>" in svg
    ys = [float(y) for y in re.findall(r'class="point" cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert ys[2] == min(ys)  # 120% drawn at the top, not above the frame
    assert ys[2] >= 0


def test_empty_charts_say_so() -> None:
    for draw in (bar_chart, line_chart):
        svg = draw(chart_id="e", title="T", desc="D", labels=[], series=[], no_data="没有数据")
        assert "没有数据" in svg and 'role="img"' in svg and "<title" in svg
    svg = bar_chart(
        chart_id="z", title="T", desc="D", labels=["x"], series=[Series("s", [0])], no_data="无"
    )
    assert ">无</text>" in svg


def test_long_ranges_thin_the_labels() -> None:
    labels = [f"d{i}" for i in range(366)]
    svg = line_chart(
        chart_id="l", title="T", desc="D", labels=labels, series=[Series("s", list(range(366)))]
    )
    assert 10 <= len(re.findall(r">d\d+</text>", svg)) <= 16
    assert svg.count('class="point"') == 366


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 3, 7, 11, 26, 99, 101)] == [
        1.0,
        0.5,
        1.0,
        5.0,
        10.0,
        20.0,
        50.0,
        100.0,
        200.0,
    ]


@pytest.mark.parametrize("raw", ["0001-01-01", "1999-12-31", "2100-01-01", "9999-12-31"])
def test_dates_outside_the_service_years_are_refused(raw: str) -> None:
    for args in ((raw, None), (None, raw)):
        with pytest.raises(DomainError) as caught:
            parse_range(*args, TODAY)
        assert caught.value.key == "error.invalid-input.report-date"
