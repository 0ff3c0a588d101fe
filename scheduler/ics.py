"""iCalendar (RFC 5545) file for one appointment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SERVICE_NAMES = {
    "marriage": ("结婚登记", "Marriage registration"),
    "divorce": ("离婚登记", "Divorce registration"),
    "reissue": ("补领婚姻登记证", "Certificate reissue"),
    "ceremony": ("颁证仪式", "Certificate ceremony"),
    "counselling": ("婚姻家庭辅导", "Marriage and family counselling"),
}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _utc(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def appointment_ics(view: dict[str, Any]) -> str:
    office, slot = view["office"], view["slot"]
    zh, en = SERVICE_NAMES.get(view["service"], (view["service"], view["service"]))
    english = view["locale"] == "en"
    summary = f"{en if english else zh} – {office['name_en' if english else 'name_zh']}"
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
        f"LOCATION:{_escape(office['address_en' if english else 'address_zh'])}",
        f"DESCRIPTION:{_escape(view['reference'])}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"
