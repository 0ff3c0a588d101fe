"""Bar and line charts drawn as SVG on the server: no JavaScript, no CDN.

Each chart is an ``<svg role="img">`` named by its ``<title>`` and ``<desc>``
(screen readers announce both), with its axis values, category labels and legend
as text, and every bar or point carrying its own ``<title>`` (a tooltip, and the
exact figure for assistive technology). The summary table under each chart on the
report pages holds the same figures, so the chart is never the only way to read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Colours distinguishable in the common colour-vision deficiencies (Okabe–Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
WIDTH, HEIGHT = 720, 280
# The legend sits above the plot (LEGEND_Y): below it, the rotated date labels of the
# x-axis ran into it. BOTTOM holds a rotated "2026-12-03" (about 45 px tall).
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 34, 64
LEGEND_Y = 6
MAX_X_LABELS = 16


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above ``value`` (axis top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-9:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _frame(
    chart_id: str, title: str, desc: str, labels: Sequence[str], top: float, unit: str
) -> list[str]:
    ids = f"{chart_id}-title {chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'role="img" aria-labelledby="{escape(ids)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ccc" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(_fmt(value) + unit)}</text>"
        )
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    plot_w = WIDTH - LEFT - RIGHT
    for i, text in enumerate(labels):
        if i % step:
            continue
        x = LEFT + plot_w * (i + 0.5) / max(len(labels), 1)
        parts.append(
            f'<text class="x-label" x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="11" '
            f'text-anchor="end" '
            f'transform="rotate(-35 {x:.1f} {HEIGHT - BOTTOM + 14})">{escape(text)}</text>'
        )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    x = LEFT
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="{LEGEND_Y}" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{x + 14}" y="{LEGEND_Y + 9}" font-size="11">'
            f"{escape(s.name)}</text>"
        )
        x += 24 + 7 * len(s.name) + (7 * sum(ord(c) > 0x2E80 for c in s.name))
    return parts


def _empty(chart_id: str, title: str, desc: str, no_data: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'viewBox="0 0 {WIDTH} 60" width="100%">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>'
        f'<text x="{WIDTH // 2}" y="34" text-anchor="middle" font-size="14">'
        f"{escape(no_data)}</text></svg>"
    )


def _top(series: Sequence[Series], fixed_top: float | None) -> float:
    if fixed_top is not None:
        return fixed_top
    found = [v for s in series for v in s.values if v is not None]
    return nice_ceiling(max(found, default=0.0))


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    no_data: str = "—",
    top: float | None = None,
) -> str:
    """Grouped bars: one group per label, one bar per series."""
    if not labels or not any(v for s in series for v in s.values):
        return _empty(chart_id, title, desc, no_data)
    axis_top = _top(series, top)
    parts = _frame(chart_id, title, desc, labels, axis_top, unit)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / len(labels)
    bar_w = group_w * 0.8 / max(len(series), 1)
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        for i, value in enumerate(s.values):
            if value is None:
                continue
            h = plot_h * min(value, axis_top) / axis_top
            x = LEFT + group_w * i + group_w * 0.1 + bar_w * si
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}" data-value="{_fmt(value)}">'
                f"<title>{escape(f'{labels[i]} · {s.name}: {_fmt(value)}{unit}')}</title></rect>"
            )
    parts.extend(_legend(series))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    no_data: str = "—",
    top: float | None = None,
) -> str:
    """One line per series; a missing value (None) breaks the line."""
    if not labels or all(v is None for s in series for v in s.values):
        return _empty(chart_id, title, desc, no_data)
    axis_top = _top(series, top)
    parts = _frame(chart_id, title, desc, labels, axis_top, unit)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            x = LEFT + plot_w * (i + 0.5) / len(labels)
            y = TOP + plot_h - plot_h * min(value, axis_top) / axis_top
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" '
                f'data-value="{_fmt(value)}">'
                f"<title>{escape(f'{labels[i]} · {s.name}: {_fmt(value)}{unit}')}</title></circle>"
            )
        for points in runs:
            if len(points) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                    f'points="{" ".join(points)}"/>'
                )
    parts.extend(_legend(series))
    parts.append("</svg>")
    return "".join(parts)
