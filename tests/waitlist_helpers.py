"""Helpers of the waiting-list tests: a day that is full, couples that join and verify."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from tests.helpers import booking_body, make_office, person

# One 30-minute slot a day: one slot is the whole day, so "full day" is one counter.
ONE_SLOT_A_DAY = {str(d): [["09:00", "09:30"]] for d in range(7)}


async def one_slot_office(code: str = "GZ-TH", cap: int = 1) -> int:
    return await make_office(code=code, slot_cap=cap, weekly_hours=ONE_SLOT_A_DAY)


async def target_slot(client: httpx.AsyncClient, office: str = "GZ-TH") -> dict[str, Any]:
    """The one slot of a day a few days ahead (not a holiday: it has a slot)."""
    start = date.today() + timedelta(days=3)
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={
            "service": "marriage",
            "from": start.isoformat(),
            "to": (start + timedelta(days=14)).isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    day = next(d for d in resp.json()["days"] if d["slots"])
    return day["slots"][0] | {"date": day["date"]}


async def fill(client: httpx.AsyncClient, slot_id: int, n: int) -> list[dict[str, Any]]:
    """``n`` held bookings on the slot (reference and manage token of each)."""
    held = []
    for _ in range(n):
        resp = await client.post("/api/v1/appointments", json=booking_body(slot_id))
        assert resp.status_code == 201, resp.text
        held.append(resp.json())
    return held


def join_body(day: str, offices: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "service": "marriage",
        "date": day,
        "offices": offices or ["GZ-TH"],
        "party_a": person(),
        "party_b": person(),
        "locale": "zh-Hans",
    } | extra


async def texted(template: str, key_prefix: str) -> dict[str, str]:
    """Codes of ``template`` messages whose key starts with ``key_prefix``, per role."""
    from scheduler.db.tables import OutboxMessage

    rows = (
        await OutboxMessage.select(OutboxMessage.key, OutboxMessage.payload)
        .where((OutboxMessage.template == template) & OutboxMessage.key.like(f"{key_prefix}%"))
        .output(load_json=True)
    )
    return {row["key"].rsplit(":", 1)[1]: row["payload"]["code"] for row in rows}


async def entry_id(reference: str) -> int:
    from scheduler.db.waitlist_tables import WaitlistEntry

    row = (
        await WaitlistEntry.select(WaitlistEntry.id)
        .where(WaitlistEntry.reference == reference)
        .first()
    )
    assert row is not None
    return int(row["id"])


async def join_and_verify(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Join, then both partners type their codes: the entry is waiting."""
    resp = await client.post("/api/v1/waitlist", json=body)
    assert resp.status_code == 201, resp.text
    joined = resp.json()
    codes = await texted("waitlist_code", f"waitlist:{await entry_id(joined['reference'])}:")
    for role in ("a", "b"):
        resp = await client.post(
            f"/api/v1/waitlist/{joined['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
        assert resp.status_code == 200, resp.text
    assert resp.json()["status"] in ("waiting", "offered"), resp.text
    return joined


async def view(client: httpx.AsyncClient, joined: dict[str, Any]) -> dict[str, Any]:
    resp = await client.get(
        f"/api/v1/waitlist/{joined['reference']}",
        headers={"X-Manage-Token": joined["manage_token"]},
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def offer_codes(entry: int) -> dict[str, str]:
    return await texted("waitlist_offer", f"waitlist:{entry}:offer:")
