"""In a real browser: a superadmin sees the missing-notice warning, loads next year's
notice through the two-step form (preview, then load with the confirmation ticked)
and the warning for that year is gone. Every page is checked with axe-core (WCAG 2.2
AA). uvicorn in a subprocess (tests/servers.py), headless Debian Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.a11y import assert_accessible
from tests.helpers import make_office
from tests.servers import CHROMIUM, CHROMIUM_ARGS, Server, running_server
from tests.test_desk_pages import PASSWORD, make_staff
from tests.test_holiday_notices import _test_notice

pytestmark = pytest.mark.browser

YEAR = datetime.now(ZoneInfo("Asia/Shanghai")).date().year + 1


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[Server]:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    # The booking window reaches into next year, which has no notice shipped.
    reach = (date(YEAR, 1, 10) - today).days
    await make_office(code="GZ-TH", days_ahead=reach, weekly_hours={"0": [["09:00", "09:30"]]})
    await make_staff("root", role="superadmin")
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    async with running_server(tmp_path / "server.log") as running:
        yield running


async def test_superadmin_loads_next_years_notice(server: Server) -> None:
    from playwright.async_api import async_playwright

    notice = _test_notice(date(YEAR, 1, 1), YEAR)
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            admin = await (await browser.new_context(locale="zh-TW")).new_page()
            root = await (await browser.new_context(locale="en-US")).new_page()
            for page in (admin, root):
                page.on("pageerror", lambda exc: errors.append(str(exc)))

            # An admin reads the page (Traditional Chinese), with the warning and no form.
            await _sign_in(admin, server.base, "th.admin")
            assert await admin.is_visible("#holiday-warning")
            assert f"{YEAR}年" in (await admin.text_content("#holiday-warning") or "")
            assert await admin.is_visible("#readonly")
            assert not await admin.locator("#load-form").count()
            await assert_accessible(admin)

            await _sign_in(root, server.base, "root")
            assert f"for {YEAR}" in (await root.text_content("#holiday-warning") or "")
            await assert_accessible(root)
            await root.fill("#f-year", str(YEAR))
            await root.fill("#f-published", notice["published_on"])
            await root.fill("#f-title", notice["title"])
            await root.fill("#f-number", notice["document_number"])
            await root.fill("#f-url", notice["url"])
            for block in notice["blocks"]:
                for key in block["holidays"]:
                    await root.fill(f"#f-{key}-from", block["from"])
                    await root.fill(f"#f-{key}-to", block["to"])
            async with root.expect_navigation(url="**/staff/admin/holidays/preview"):
                await root.click("#preview-button")
            assert await root.is_visible("#affected")
            assert "0 couples" in (await root.text_content("#affected") or "")
            await assert_accessible(root)

            # Not one click: the confirmation box is required.
            await root.click("#load-button")
            assert root.url.endswith("/staff/admin/holidays/preview")
            await root.check("#f-confirm")
            async with root.expect_navigation(url="**/staff/admin/holidays?notice=loaded"):
                await root.click("#load-button")
            assert await root.is_visible("#notice")
            assert await root.is_visible(f"#notice-{YEAR}")
            warning = root.locator("#holiday-warning")
            assert not await warning.count() or f"for {YEAR}" not in (
                await warning.text_content() or ""
            )
            await assert_accessible(root)

            await admin.reload()
            assert await admin.is_visible(f"#notice-{YEAR}")
        finally:
            await browser.close()
    assert not errors, errors


async def _sign_in(page: object, base: str, username: str) -> None:
    from playwright.async_api import Page

    assert isinstance(page, Page)
    await page.goto(base + "/staff/admin/holidays")
    await page.wait_for_url("**/staff/login?next=*")
    await page.fill("#f-username", username)
    await page.fill("#f-password", PASSWORD)
    async with page.expect_navigation(url="**/staff/admin/holidays"):
        await page.click("form[action='/staff/login'] button[type=submit]")
