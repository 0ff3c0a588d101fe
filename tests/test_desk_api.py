"""The desk API: scoping (401 anonymous, 404 another office), masked lists, audited
reveals, check-in and calling through HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scheduler.db.audit import entries
from tests.helpers import booking_body, make_office, open_slots, sms_codes, staff_token


async def _confirmed(client: httpx.AsyncClient, office: str = "GZ-TH") -> dict[str, Any]:
    slot = (await open_slots(client, office))[0]
    body = booking_body(slot["id"])
    held = (await client.post("/api/v1/appointments", json=body)).json()
    codes = await sms_codes(held["reference"])
    for role in ("a", "b"):
        await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
    return held | {"body": body}


ENDPOINTS = [
    ("GET", "/api/v1/offices/{office}/appointments", None),
    ("POST", "/api/v1/offices/{office}/appointments/{ref}/reveal", None),
    (
        "POST",
        "/api/v1/offices/{office}/checkins",
        {"reference": "{ref}", "parties_present": ["a", "b"]},
    ),
    ("POST", "/api/v1/offices/{office}/queue/call-next", {"counter": "1"}),
    ("GET", "/api/v1/offices/{office}/queue", None),
]


def _fill(value: Any, office: str, ref: str) -> Any:
    if isinstance(value, str):
        return value.replace("{office}", office).replace("{ref}", ref)
    if isinstance(value, dict):
        return {k: _fill(v, office, ref) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_anonymous_401_and_other_office_404(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await make_office(code="GZ-TH")
    await make_office(code="SZ-FT")
    held = await _confirmed(client, "SZ-FT")
    url = _fill(path, "SZ-FT", held["reference"])
    payload = _fill(body, "SZ-FT", held["reference"])
    anonymous = await client.request(method, url, json=payload)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    tianhe_clerk = await staff_token(client, "th.clerk", offices=("GZ-TH",))
    other = await client.request(method, url, json=payload, headers=tianhe_clerk)
    assert other.status_code == 404
    futian_clerk = await staff_token(client, "ft.clerk", offices=("SZ-FT",))
    own = await client.request(method, url, json=payload, headers=futian_clerk)
    assert own.status_code < 400 or own.json()["type"].rsplit("/", 1)[1] in {
        "too-early",
        "not-today",
        "queue-empty",
    }


async def test_day_list_is_masked_and_reveal_is_audited(client: httpx.AsyncClient) -> None:
    await make_office()
    held = await _confirmed(client)
    clerk = await staff_token(client, "clerk.one")
    day = held["slot"]["date"]
    listed = (
        await client.get("/api/v1/offices/GZ-TH/appointments", params={"date": day}, headers=clerk)
    ).json()
    assert [a["reference"] for a in listed] == [held["reference"]]
    id_number = held["body"]["party_a"]["id_number"]
    assert id_number not in str(listed) and held["body"]["party_a"]["phone"] not in str(listed)
    by_id = await client.get(
        "/api/v1/offices/GZ-TH/appointments", params={"date": day, "q": id_number}, headers=clerk
    )
    assert [a["reference"] for a in by_id.json()] == [held["reference"]]
    revealed = await client.post(
        f"/api/v1/offices/GZ-TH/appointments/{held['reference']}/reveal", headers=clerk
    )
    assert revealed.json()["parties"][0]["id_number"] == id_number
    audit = await entries("appointment", held["reference"])
    assert [(e["action"], e["actor_name"]) for e in audit] == [("appointment.reveal", "clerk.one")]


async def test_ticket_actions_of_another_office_are_404(client: httpx.AsyncClient) -> None:
    await make_office(code="GZ-TH")
    await make_office(code="SZ-FT")
    futian = await staff_token(client, "ft.clerk", offices=("SZ-FT",))
    tianhe = await staff_token(client, "th.clerk", offices=("GZ-TH",))
    resp = await client.post("/api/v1/queue/1/recall", headers=tianhe)
    assert resp.status_code == 404
    resp = await client.post("/api/v1/queue/1/dance", headers=futian)
    assert resp.status_code == 404
