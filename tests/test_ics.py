"""The appointment's .ics (RFC 5545), read back by an independent parser (icalendar):
lines folded at 75 octets without splitting a character, one charset in the
Content-Type, the title and place in the appointment's language."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import icalendar
import pytest

from tests.helpers import booking_body, make_office, open_slots

LONG_ADDRESS = (
    "广东省广州市天河区天河路 2 号天河区政务服务中心三楼婚姻登记处"
    "（地铁三号线体育西路站 B 出口，步行约五分钟；周末请走东门）"
)


async def _ics(client: httpx.AsyncClient, locale: str) -> tuple[httpx.Response, dict[str, str]]:
    from scheduler.db.tables import Office

    await make_office()
    await Office.update({Office.address_zh: LONG_ADDRESS}).where(Office.code == "GZ-TH")
    slot = (await open_slots(client))[0]
    resp = await client.post("/api/v1/appointments", json=booking_body(slot["id"], locale=locale))
    assert resp.status_code == 201, resp.text
    held = resp.json()
    ics = await client.get(
        f"/api/v1/appointments/{held['reference']}.ics", params={"token": held["manage_token"]}
    )
    assert ics.status_code == 200, ics.text
    return ics, held


@pytest.mark.parametrize(
    ("locale", "summary", "location"),
    [
        (
            "zh-Hant",
            "結婚登記 – GZ-TH 婚姻登記處",
            "廣東省廣州市天河區天河路 2 號天河區政務服務中心三樓婚姻登記處"
            "（地鐵三號線體育西路站 B 出口，步行約五分鐘；週末請走東門）",
        ),
        ("zh-Hans", "结婚登记 – GZ-TH 婚姻登记处", LONG_ADDRESS),
        ("en", "Marriage registration – GZ-TH Marriage Registry", "1 Test Road"),
    ],
)
async def test_ics_parses_folded_and_in_the_appointments_language(
    client: httpx.AsyncClient, locale: str, summary: str, location: str
) -> None:
    ics, held = await _ics(client, locale)
    content_type = ics.headers["content-type"]
    assert content_type.lower().count("charset") == 1, content_type
    assert content_type.replace(" ", "").lower() == "text/calendar;charset=utf-8"

    raw = ics.content
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and all(b"\n" not in line for line in lines)
    assert max(len(line) for line in lines) <= 75, max(lines, key=len)
    for line in lines:
        line.decode("utf-8")  # every physical line is whole UTF-8: no character split
    if locale != "en":
        assert any(line.startswith(b" ") for line in lines)  # the long address was folded

    calendar = icalendar.Calendar.from_ical(raw)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert str(event["SUMMARY"]) == summary
    assert str(event["LOCATION"]) == location
    assert str(event["UID"]) == f"{held['reference']}@registry-scheduler"
    start = event.decoded("DTSTART")
    assert start == datetime.fromisoformat(held["slot"]["start_at"]).astimezone(UTC)
