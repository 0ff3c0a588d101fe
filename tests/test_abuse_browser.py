"""In a real browser (issue 13.3): a superadmin widens the phone regions one office
accepts on the SMS country rules page, and the running server then books a couple
with a UK mobile there, and still refuses it at another office. The page passes
axe-core (WCAG 2.2 AA) in each language. uvicorn in a subprocess, headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.a11y import assert_accessible
from tests.helpers import booking_body, make_office, person
from tests.servers import CHROMIUM, CHROMIUM_ARGS, Server, running_server
from tests.test_desk_pages import PASSWORD, make_staff

pytestmark = pytest.mark.browser

PAGE = "/staff/admin/policies/sms_countries"
UK = "+447400123456"


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[Server]:
    from scheduler.usecases.policy import policies

    policies.invalidate()
    await make_office(code="GZ-TH", days_ahead=6)
    await make_office(code="SZ-FT", days_ahead=6)
    await make_staff("root", role="superadmin")
    async with running_server(tmp_path / "server.log") as running:
        yield running
    policies.invalidate()


async def _book_with_uk_phone(base: str, office: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base) as api:
        from datetime import date, timedelta

        start = date.today() + timedelta(days=2)
        days = (
            await api.get(
                f"/api/v1/offices/{office}/availability",
                params={
                    "service": "marriage",
                    "from": start.isoformat(),
                    "to": (start + timedelta(days=3)).isoformat(),
                },
            )
        ).json()["days"]
        slot = next(s for d in days for s in d["slots"])
        body = booking_body(slot["id"], b=person() | {"phone": UK})
        return await api.post("/api/v1/appointments", json=body)


async def test_an_office_accepts_more_phone_regions_from_the_policy_page(server: Server) -> None:
    from playwright.async_api import async_playwright

    refused = await _book_with_uk_phone(server.base, "GZ-TH")
    assert refused.status_code == 422 and refused.json()["field"] == "party_b.phone"
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(locale="en-US")).new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(server.base + PAGE)
            await page.wait_for_url("**/staff/login?next=*")
            await page.fill("#f-username", "root")
            await page.fill("#f-password", PASSWORD)
            async with page.expect_navigation(url=f"**{PAGE}"):
                await page.click("form[action='/staff/login'] button[type=submit]")
            assert await page.input_value("#f-booking_regions") == "CN HK MO TW"
            assert await page.input_value("#f-office_regions") == ""
            await assert_accessible(page)
            for lang in ("zh-Hans", "zh-Hant"):
                await page.goto(f"{server.base}{PAGE}?lang={lang}")
                await assert_accessible(page)
            await page.goto(server.base + PAGE)
            # A bad region is refused on the page, with the field named, nothing saved.
            await page.fill("#f-office_regions", "GZ-TH: CN HK MO TW UK-ish")
            await page.click("#save-button")
            await page.wait_for_load_state()
            assert "office_regions.GZ-TH" in (await page.content())
            await assert_accessible(page)
            await page.fill("#f-office_regions", "GZ-TH: CN HK MO TW GB")
            async with page.expect_navigation(url="**/staff/admin/policies?notice=saved"):
                await page.click("#save-button")
            await page.goto(server.base + PAGE)
            assert await page.input_value("#f-office_regions") == "GZ-TH: CN GB HK MO TW"
            assert await page.input_value("#f-booking_regions") == "CN HK MO TW"
        finally:
            await browser.close()
    assert not errors, errors
    # The server that saved it applies it at once; other offices keep the default.
    booked = await _book_with_uk_phone(server.base, "GZ-TH")
    assert booked.status_code == 201, booked.text
    elsewhere = await _book_with_uk_phone(server.base, "SZ-FT")
    assert elsewhere.status_code == 422
