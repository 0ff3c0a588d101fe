"""SMS arithmetic: encoding and segment counts (GSM 03.38 vs UCS-2), per-country rules.

A text that needs one character outside GSM-7 is sent entirely as UCS-2: 70
characters in a single segment, 67 per segment once concatenated (the rest of
each segment carries the concatenation header). GSM-7 gives 160 / 153, and the
extension characters (``{}[]~|^€\\``) cost two septets each.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
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


def rule_for(phone: str, rules: Mapping[str, CountryRule]) -> CountryRule:
    """The rule of an E.164 number's country in ``rules`` (by calling code, "default"
    for every other). Calling codes are prefix-free, so a string prefix match is
    exact, and much cheaper than parsing the number."""
    for code, rule in rules.items():
        if code != "default" and phone.startswith("+" + code):
            return rule
    return rules["default"]


def apply_rule(text: str, rule: CountryRule) -> str:
    """The text as sent: signature first (carriers in mainland China reject unsigned SMS)."""
    text = text.strip()
    if rule.signature and not text.startswith(rule.signature):
        text = rule.signature + text
    return text


# A link in any form carriers (and phishers) use: a scheme, "www", an IP address,
# or a bare domain ("example.com/x", "t.cn/abc"). After NFKC, so full-width
# letters and dots count; the ideographic full stop counts only before a common
# top-level domain (it ends Chinese sentences).
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://|\bwww\d?\.", re.IGNORECASE | re.ASCII)
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", re.ASCII)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(
    rf"\b{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,24}}\b(?!\.[a-z0-9])", re.IGNORECASE | re.ASCII
)
_COMMON_TLDS = "com|cn|net|org|top|xyz|vip|cc|co|io|me|info|site|shop|link|club|ly|hk|tw|mo"
_IDEOGRAPHIC = re.compile(rf"{_LABEL}[。｡](?:{_COMMON_TLDS})\b", re.IGNORECASE | re.ASCII)


def contains_url(text: str) -> bool:
    """Whether ``text`` carries a link, however written (scheme, www, IP, bare domain)."""
    folded = unicodedata.normalize("NFKC", text)
    return any(p.search(folded) for p in (_SCHEME, _IPV4, _DOMAIN, _IDEOGRAPHIC))


def violations(text: str, rule: CountryRule) -> list[str]:
    problems = []
    if not rule.allow_urls and contains_url(text):
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
