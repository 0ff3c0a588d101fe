"""SMS arithmetic: encoding and segment counts (GSM 03.38 vs UCS-2), per-country rules.

A text that needs one character outside GSM-7 is sent entirely as UCS-2: 70
characters in a single segment, 67 per segment once concatenated (the rest of
each segment carries the concatenation header). GSM-7 gives 160 / 153, and the
extension characters (``{}[]~|^€\\``) cost two septets each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def count_segments(text: str) -> SegmentCount:
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        costs = [2 if ch in _GSM_EXTENDED else 1 for ch in text]
        single, multi = 160, 153
        encoding: Encoding = "GSM-7"
    else:
        # Characters beyond the BMP (emoji) take two UTF-16 code units.
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, multi = 70, 67
        encoding = "UCS-2"
    units = sum(costs)
    if units <= single:
        return SegmentCount(encoding, units, 1 if units else 0)
    return SegmentCount(encoding, units, _packed(costs, multi))


def _packed(costs: list[int], size: int) -> int:
    """Segments needed when a two-unit character (an escape sequence, a surrogate
    pair) is never split across segments: it moves whole to the next one."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > size:
            segments, used = segments + 1, 0
        used += cost
    return segments


@dataclass(frozen=True)
class CountryRule:
    """What one destination country's carriers accept (config/sms_rules.toml)."""

    signature: str = ""
    allow_urls: bool = True
    max_segments: int = 3


def apply_rule(text: str, rule: CountryRule) -> str:
    """The text as sent: signature first (carriers in mainland China reject unsigned SMS)."""
    text = text.strip()
    if rule.signature and not text.startswith(rule.signature):
        text = rule.signature + text
    return text


def violations(text: str, rule: CountryRule) -> list[str]:
    problems = []
    if not rule.allow_urls and any(m in text.lower() for m in ("http://", "https://", "www.")):
        problems.append("url")
    if count_segments(text).segments > rule.max_segments:
        problems.append("too-long")
    return problems


def after_quiet_hours(moment: datetime, tz: ZoneInfo, quiet: tuple[time, time] | None) -> datetime:
    """``moment`` itself, or the end of the quiet hours it falls in (as UTC).

    Quiet hours may wrap past midnight (21:00-08:00): a moment at 23:00 moves to
    08:00 the next local morning, one at 06:00 to 08:00 the same morning.
    """
    if quiet is None:
        return moment
    start, end = quiet
    local = moment.astimezone(tz)
    clock = local.time()
    wraps = start > end
    inside = (clock >= start or clock < end) if wraps else (start <= clock < end)
    if not inside:
        return moment
    release_day = local.date() + timedelta(days=1) if wraps and clock >= start else local.date()
    return datetime.combine(release_day, end, tz).astimezone(UTC)
