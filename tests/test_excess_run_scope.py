"""A lowered cap's excess move records a run with no blackout: its progress is
shown to the admins of the office it moved couples in, and to no other office's."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from scheduler.db.tables import Slot
from tests.helpers import booking_body, make_office, staff_token


async def test_excess_run_progress_is_scoped_by_its_office(
    client: httpx.AsyncClient, db: None
) -> None:
    office_id = await make_office(code="GZ-TH", slot_cap=3, days_ahead=6)
    await make_office(code="SZ-FT", days_ahead=6)
    mine = await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))
    other = await staff_token(client, "ft.admin", role="admin", offices=("SZ-FT",))
    slot = (
        await Slot.select(Slot.id)
        .where((Slot.office == office_id) & (Slot.day >= date.today() + timedelta(days=2)))
        .order_by(Slot.start_at)
        .first()
    )
    for _ in range(3):
        held = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
        assert held.status_code == 201, held.text
    resp = await client.put(
        "/api/v1/admin/offices/GZ-TH/services/marriage",
        json={"slot_cap": 1, "excess": "move"},
        headers=mine,
    )
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["moved"]["run"]
    url = f"/api/v1/admin/reschedule-runs/{run_id}"
    shown = await client.get(url, headers=mine)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["blackout"], body["status"], body["total"], body["moved"]) == (None, "done", 2, 2)
    assert body["sms"]["queued"] == 4  # both partners of the two moved couples
    assert (await client.get(url, headers=other)).status_code == 404
    assert (await client.get(url)).status_code == 401
