"""The pages work under their Content-Security-Policy in a real browser: htmx swaps
the month's slots in (and moves focus), the display board's script connects, the
check-in page's script runs; the browser reports no CSP violation; the pages pass
axe-core; and no page of ours can be framed by another site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.a11y import assert_accessible
from tests.helpers import make_office
from tests.servers import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.test_desk_pages import PASSWORD, make_staff

pytestmark = pytest.mark.browser


def _watch(page: Any, problems: list[str]) -> None:
    page.on("pageerror", lambda exc: problems.append(f"error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )


async def test_pages_work_under_their_csp(db: None, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    await make_office(code="GZ-TH", days_ahead=3)
    await make_staff("th.clerk", offices=("GZ-TH",))
    problems: list[str] = []
    async with (
        running_server(tmp_path / "server.log") as server,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(locale="zh-CN")).new_page()
            _watch(page, problems)
            # htmx: a day's slots swapped in, focus on their heading (app.js).
            await page.goto(server.base + "/book/GZ-TH/marriage")
            await page.locator("#picker a[id^=day-]").first.click()
            await page.wait_for_function(
                "() => document.activeElement && document.activeElement.id === 'slots-title'"
            )
            await assert_accessible(page)
            # The board's script (static/board.js) connects to its event stream.
            await page.goto(server.base + "/offices/GZ-TH/board")
            await page.wait_for_selector('#status[data-state="live"]')
            await assert_accessible(page)
            # The check-in page's script (static/checkin.js) selects a typed reference.
            await page.goto(server.base + "/staff/login?next=/staff/offices/GZ-TH/checkin")
            await page.fill("#f-username", "th.clerk")
            await page.fill("#f-password", PASSWORD)
            async with page.expect_navigation(url="**/staff/offices/GZ-TH/checkin"):
                await page.click("form[action='/staff/login'] button[type=submit]")
            await page.fill("#f-reference", "GZTH-NONE-NONE")
            async with page.expect_navigation():
                await page.press("#f-reference", "Enter")
            selected = "() => { const i = document.getElementById('f-reference');"
            selected += " return i.selectionStart === 0 && i.selectionEnd === i.value.length; }"
            await page.wait_for_function(selected)
            await assert_accessible(page)
            # Framed by another site: the browser refuses to show it.
            framer = await (await browser.new_context()).new_page()
            blocked: list[str] = []
            framer.on("console", lambda msg: blocked.append(msg.text))
            await framer.set_content(f'<iframe src="{server.base}/"></iframe>')
            await framer.wait_for_timeout(1000)
            shown = await framer.frames[-1].content()
            assert "/static/app.css" not in shown  # not our page: the browser's "refused"
            assert any("frame-ancestors" in m or "X-Frame-Options" in m for m in blocked), blocked
        finally:
            await browser.close()
    assert not problems, problems
