"""A real browser books through the pages: uvicorn in a subprocess on loopback,
headless Debian Chromium driven by Playwright, the SMS codes read from the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_office, person, sms_codes
from tests.servers import CHROMIUM, CHROMIUM_ARGS, running_server

pytestmark = pytest.mark.browser


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[str]:
    """The app on a free loopback port, on the test session's database. The office
    is created first: the ``db`` fixture empties the tables before each test."""
    await make_office()
    async with running_server(tmp_path / "server.log") as running:
        yield running.base


async def test_book_in_zh_hans_with_chromium(server: str) -> None:
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(server + "/")
            assert await page.get_attribute("html", "lang") == "zh-Hans"
            await page.click('a[href="/book/GZ-TH/marriage"]')
            await _pick_day(page)
            # htmx swapped the slots in and, once settled, moved focus to their heading
            # (a timeout here means focus never got there).
            await page.wait_for_selector("#slots a.slot")
            await page.wait_for_function(
                "() => document.activeElement && document.activeElement.id === 'slots-title'",
                timeout=5000,
            )
            await page.click("#slots a.slot")
            await page.wait_for_selector("form[action='/book']")
            for role in ("a", "b"):
                for field, value in person().items():
                    if field != "id_type":
                        await page.fill(f"#f-party_{role}-{field}", value)
            await page.click("form[action='/book'] button[type=submit]")
            await page.wait_for_url("**/booking/*")
            reference = await page.get_attribute("[data-reference]", "data-reference")
            assert reference
            codes = await sms_codes(reference)
            for role in ("a", "b"):
                await page.fill(f"#code-{role}", codes[role])
                async with page.expect_navigation():
                    await page.click(f"form:has(#code-{role}) button[type=submit]")
            heading = await page.text_content("h1")
            assert heading is not None and "预约成功" in heading
            assert reference in (await page.text_content("main") or "")
            assert await page.locator(".qr svg").count() == 1
        finally:
            await browser.close()
    assert not errors, errors


async def _pick_day(page: Any) -> None:
    """Click an open day at least two days ahead, paging months with htmx if needed."""
    earliest = (date.today() + timedelta(days=2)).isoformat()
    for _ in range(3):
        await page.wait_for_selector("#picker")
        days = await page.eval_on_selector_all(
            'td[data-status="open"]', "cells => cells.map(c => c.dataset.date)"
        )
        later = [d for d in days if d >= earliest]
        if later:
            await page.click(f"#day-{later[0]}")
            return
        next_month = await page.get_attribute("#month-next", "href")
        await page.click("#month-next")
        # Wait for htmx to swap in the next month, not just for the click.
        month = next_month.rsplit("=", 1)[1]
        await page.wait_for_selector(f'td[data-date^="{month}-"]')
    raise AssertionError("no open day within three months")
