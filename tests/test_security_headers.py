"""Security headers on a real server: no page can be framed, pages have a CSP,
nothing but static files may be stored by a cache (pages and API answers carry
names, ID numbers, references and tokens). Answers made before routing (404) and
the staff pages are covered too."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.helpers import booking_body, make_office, staff_token
from tests.servers import running_server


def _assert_not_frameable(resp: httpx.Response) -> None:
    assert resp.headers["x-frame-options"] == "DENY", resp.url
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"], resp.url


async def test_every_answer_has_the_headers(db: None, tmp_path: Path) -> None:
    await make_office()
    async with (
        running_server(tmp_path / "server.log") as server,
        httpx.AsyncClient(base_url=server.base) as client,
    ):
        auth = await staff_token(client, "root.admin", "superadmin", ())
        public = await client.get(
            "/api/v1/offices/GZ-TH/availability", params={"service": "marriage"}
        )
        days = public.json()["days"]
        slot = next(s for d in days if d["status"] == "open" for s in d["slots"])
        held = (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).json()
        ref, token = held["reference"], held["manage_token"]
        pages = [
            await client.get("/"),
            await client.get("/book/GZ-TH/marriage"),
            await client.get(f"/manage/{ref}", params={"token": token}, follow_redirects=True),
            await client.get("/staff/login"),
            await client.get("/offices/GZ-TH/board"),
            await client.get("/no/such/page"),
        ]
        personal = [
            await client.get(f"/api/v1/appointments/{ref}", headers={"X-Manage-Token": token}),
            await client.get(f"/api/v1/appointments/{ref}.ics", params={"token": token}),
            await client.get("/api/v1/staff/me", headers=auth),
            await client.post("/api/v1/appointments", json={}),
        ]
        static = await client.get("/static/htmx.min.js")
    for resp in pages:
        assert resp.headers["content-type"].startswith("text/html"), resp.url
        _assert_not_frameable(resp)
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert "object-src 'none'" in csp
        assert resp.headers["cache-control"] == "no-store", resp.url
    assert [r.status_code for r in pages] == [200, 200, 200, 200, 200, 404]
    for resp in personal:
        _assert_not_frameable(resp)
        assert resp.headers["cache-control"] == "no-store", resp.url
    assert [r.status_code for r in personal] == [200, 200, 200, 422]
    # Availability holds no personal data and is cacheable on purpose (calendar_cache.py).
    _assert_not_frameable(public)
    assert public.headers["cache-control"].startswith("public")
    _assert_not_frameable(static)
    assert "no-store" not in static.headers.get("cache-control", "")
