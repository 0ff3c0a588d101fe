"""Issue 14 items 3 and 13 in Chromium (zh-Hans and English), axe-core on every page:
reports open on a labelled window around today whose chart legend clears the date
labels; closed weekdays show no sample hours; the pre-check list and a staff 404 page
in the staff layout."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.kernel.i18n import translate
from tests.a11y import assert_accessible
from tests.helpers import make_office
from tests.servers import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.test_desk_pages import PASSWORD, make_staff

pytestmark = pytest.mark.browser

# Bounding boxes of every legend entry and x-axis label of each chart, in the page.
OVERLAPS = """() => {
  const hit = (a, b) =>
    a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const found = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const legend = [...svg.querySelectorAll('text.legend')].map(t => t.getBoundingClientRect());
    const labels = [...svg.querySelectorAll('text.x-label')].map(t => t.getBoundingClientRect());
    for (const l of legend) for (const x of labels) if (hit(l, x)) found.push(svg.id);
  }
  return [document.querySelectorAll('svg.chart text.x-label').length, found];
}"""


@pytest.mark.parametrize(("browser_locale", "locale"), [("zh-CN", "zh-Hans"), ("en-US", "en")])
async def test_reports_hours_and_staff_errors(
    db: None, tmp_path: Path, browser_locale: str, locale: str
) -> None:
    from playwright.async_api import async_playwright

    weekdays = {str(d): [["09:00", "12:00"]] for d in range(5)}
    await make_office(code="GZ-TH", days_ahead=10, weekly_hours=weekdays)
    await make_staff("root", role="superadmin")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the reports' default zone

    def t(key: str, **params: Any) -> str:
        return translate(locale, key, **params)

    async def visit(url: str) -> None:
        await page.goto(server.base + url)
        await assert_accessible(page)

    errors: list[str] = []
    async with running_server(tmp_path / "server.log") as server, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale=browser_locale)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await visit("/staff/login")
            await page.fill("#f-username", "root")
            await page.fill("#f-password", PASSWORD)
            async with page.expect_navigation():
                await page.click("form[action='/staff/login'] button[type=submit]")
            await assert_accessible(page)

            await visit("/staff/admin/reports/bookings")
            shown = await page.inner_text("#report-range")
            assert (today - timedelta(days=30)).isoformat() in shown
            assert (today + timedelta(days=30)).isoformat() in shown
            assert await page.inner_text("#report-default") == t(
                "safety.reports.default_window", days=30
            )
            labels, overlapping = await page.evaluate(OVERLAPS)
            assert labels > 0 and overlapping == [], overlapping

            await visit("/staff/admin/offices/GZ-TH")
            assert await page.locator("input[placeholder]").count() == 0
            for day in ("5", "6"):  # Saturday and Sunday: closed, and said so
                hint = await page.inner_text(f"#f-marriage-closed_{day}")
                assert hint == t("safety.hours.closed")
            assert await page.locator("#f-marriage-closed_0").count() == 0

            await visit("/staff/offices/GZ-TH/prechecks")
            await visit("/staff/offices/NOPE/day")
            assert await page.locator("#staff-error").count() == 1
            assert await page.locator("a.brand[href='/staff/']").count() == 1
        finally:
            await browser.close()
    assert not errors, errors
