"""iCalendar (RFC 5545) file for one appointment, in the appointment's language."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import opencc

from scheduler.kernel.i18n import translate

# RFC 5545 §3.1: lines SHOULD NOT be longer than 75 octets, excluding the line break.
FOLD_OCTETS = 75


@cache
def _to_traditional() -> opencc.OpenCC:
    # Office names and addresses are stored once, in Simplified characters; a zh-Hant
    # calendar entry shows them in Traditional ones (OpenCC's standard s2t table).
    return opencc.OpenCC("s2t")


def _escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _utc(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str) -> str:
    """Fold a content line into pieces of at most 75 octets (CRLF + one space before
    each continuation, the space counting in its line), never inside a UTF-8 character."""
    pieces: list[str] = []
    current: list[str] = []
    size, limit = 0, FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, FOLD_OCTETS - 1  # the leading space counts
        current.append(char)
        size += width
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def _texts(view: dict[str, Any]) -> tuple[str, str]:
    """(summary, location) in the appointment's locale."""
    office, locale = view["office"], view["locale"]
    service = translate(locale, f"page.service.{view['service']}")
    if locale == "en":
        return f"{service} – {office['name_en']}", office["address_en"]
    name, address = office["name_zh"], office["address_zh"]
    if locale == "zh-Hant":
        name, address = _to_traditional().convert(name), _to_traditional().convert(address)
    return f"{service} – {name}", address


def appointment_ics(view: dict[str, Any]) -> str:
    slot = view["slot"]
    summary, location = _texts(view)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//registry-scheduler//EN",
        "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:{view['reference']}@registry-scheduler",
        f"DTSTAMP:{_utc(view['created_at'])}",
        f"DTSTART:{_utc(slot['start_at'])}",
        f"DTEND:{_utc(slot['end_at'])}",
        f"SUMMARY:{_escape(summary)}",
        f"LOCATION:{_escape(location)}",
        f"DESCRIPTION:{_escape(view['reference'])}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)
