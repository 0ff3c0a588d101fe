"""Couple pages without a browser (issue 14, item 10): the pre-check button is
offered only while the pre-check is open, i.e. before the appointment's day."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.helpers import booking_body, make_office
from tests.test_couple_access_api import latest_code


async def _confirmed_on(client: httpx.AsyncClient, day: date) -> tuple[str, str]:
    resp = await client.get(
        "/api/v1/offices/GZ-TH/availability",
        params={"service": "marriage", "from": day.isoformat(), "to": day.isoformat()},
    )
    slots = [s for d in resp.json()["days"] if d["status"] == "open" for s in d["slots"]]
    assert slots, resp.text
    body = booking_body(slots[-1]["id"])
    held = await client.post("/api/v1/appointments", json=body)
    assert held.status_code == 201, held.text
    ref = held.json()["reference"]
    for role in ("a", "b"):
        code = await latest_code(body[f"party_{role}"]["phone"])
        ok = await client.post(
            f"/api/v1/appointments/{ref}/confirm", json={"party": role, "code": code}
        )
        assert ok.status_code == 200, ok.text
    return ref, held.json()["manage_token"]


async def _manage(client: httpx.AsyncClient, ref: str, token: str) -> str:
    resp = await client.get(f"/manage/{ref}", params={"token": token})
    assert resp.status_code == 303
    page = await client.get(resp.headers["location"])
    assert page.status_code == 200
    return page.text


async def test_precheck_button_only_while_the_precheck_is_open(
    client: httpx.AsyncClient,
) -> None:
    from zoneinfo import ZoneInfo

    from scheduler.db.appointments import load
    from scheduler.db.tables import Slot
    from scheduler.kernel.clock import utcnow

    await make_office()
    ref, token = await _confirmed_on(client, date.today() + timedelta(days=3))
    assert 'id="precheck-link"' in await _manage(client, ref, token)
    # The same booking on the office's today: the pre-check closed the day before
    # (office time), so the manage page no longer offers it.
    loaded = await load(ref)
    assert loaded is not None
    today_there = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()
    await Slot.update({Slot.day: today_there}).where(Slot.id == loaded.slot.id)
    page = await _manage(client, ref, token)
    assert 'id="precheck-link"' not in page
    assert 'href="/manage/' + ref + '/move"' in page  # the other actions stay
