"""In a real browser: an admin signs in, raises the marriage slot cap of their office,
and the public booking calendar (open in another browser) shows the new remaining
seats after a reload. uvicorn in a subprocess (tests/servers.py), headless Debian
Chromium through Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.helpers import make_office
from tests.servers import CHROMIUM, CHROMIUM_ARGS, Server, running_server
from tests.test_desk_pages import PASSWORD, make_staff

pytestmark = pytest.mark.browser

HOURS = {str(d): [["09:00", "11:00"]] for d in range(7)}


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[Server]:
    await make_office(code="GZ-TH", days_ahead=6, slot_cap=4, weekly_hours=HOURS)
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    async with running_server(tmp_path / "server.log") as running:
        yield running


async def _first_open_day(base: str) -> str:
    start = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=2)
    async with httpx.AsyncClient(base_url=base) as api:
        resp = await api.get(
            "/api/v1/offices/GZ-TH/availability",
            params={
                "service": "marriage",
                "from": start.isoformat(),
                "to": (start + timedelta(days=4)).isoformat(),
            },
        )
    return str(next(d["date"] for d in resp.json()["days"] if d["status"] == "open"))


async def test_admin_raises_a_slot_cap_and_the_calendar_shows_it(server: Server) -> None:
    from playwright.async_api import async_playwright

    day = await _first_open_day(server.base)
    calendar_url = f"{server.base}/book/GZ-TH/marriage?month={day[:7]}&day={day}"
    first_slot = f"#slots a.slot[href*='/{day}/']"
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            couple = await (await browser.new_context(locale="en-US")).new_page()
            admin = await (await browser.new_context(locale="en-US")).new_page()
            for page in (couple, admin):
                page.on("pageerror", lambda exc: errors.append(str(exc)))
            await couple.goto(calendar_url)
            assert "4 left" in (await couple.locator(first_slot).first.text_content() or "")

            await admin.goto(server.base + "/staff/admin/offices/GZ-TH")
            await admin.wait_for_url("**/staff/login?next=*")
            await admin.fill("#f-username", "th.admin")
            await admin.fill("#f-password", PASSWORD)
            async with admin.expect_navigation(url="**/staff/admin/offices/GZ-TH"):
                await admin.click("form[action='/staff/login'] button[type=submit]")
            assert await admin.input_value("#f-marriage-slot_cap") == "4"
            await admin.fill("#f-marriage-slot_cap", "7")
            async with admin.expect_navigation(url="**/staff/admin/offices/GZ-TH?notice=saved"):
                await admin.click("#service-marriage button[type=submit]")
            assert await admin.input_value("#f-marriage-slot_cap") == "7"
            assert await admin.is_visible("#notice")

            await couple.reload()
            texts = await couple.locator(first_slot).all_text_contents()
            assert texts and all("7 left" in t for t in texts), texts
        finally:
            await browser.close()
    assert not errors, errors
