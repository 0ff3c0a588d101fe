from __future__ import annotations
import json
import httpx
from tests.helpers import make_office, open_slots, booking_body, person

async def test_probe(client: httpx.AsyncClient) -> None:
    await make_office()
    s = (await open_slots(client))[0]
    r = await client.post("/api/v1/appointments", content=b"{not json", headers={"content-type": "application/json"})
    print("MALFORMED", r.status_code, r.headers.get("content-type"), r.text)
    r = await client.post("/api/v1/appointments", json=booking_body(s["id"], extra=1))
    print("UNKNOWN", r.status_code, r.text)
    r = await client.get("/api/v1/offices/GZ-TH/availability", params={"service": "marriage", "from": "2026-13-01"})
    print("BADDATE", r.status_code, r.text)
    r = await client.get("/schema/openapi.json")
    print(json.dumps(r.json(), indent=1)[:200])
    open("/tmp/openapi.json","w").write(r.text)
