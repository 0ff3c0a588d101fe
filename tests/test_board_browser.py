"""The hall's display board in a real browser: a clerk signs in, checks a couple in and
calls them; a board open in another browser context shows the call within one second.
Then the server restarts: the open board reconnects by itself and shows the next call.

uvicorn runs in a subprocess on loopback (tests/servers.py), headless Debian Chromium
is driven by Playwright. The couples' appointments are today, a few minutes ago: the
booking API refuses slots that have started, so tests.test_desk_pages.confirmed_today
books them through the use cases with an explicit earlier ``now`` (see there).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import make_office
from tests.servers import CHROMIUM, CHROMIUM_ARGS, Server, running_server
from tests.test_desk_pages import PASSWORD, confirmed_today, make_staff

pytestmark = pytest.mark.browser

LIVE_WITHIN = 1.0  # seconds from the clerk's click to the board showing the call
RECONNECT_WITHIN = 15_000  # ms for the board to notice the restart and come back
CALLED = "label => document.getElementById('called').textContent.includes(label)"


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[Server]:
    await make_office(code="GZ-TH", days_ahead=3)
    async with running_server(tmp_path / "server.log") as running:
        yield running


async def _shows_called(board: Any, label: str, timeout_ms: float) -> None:
    await board.wait_for_function(CALLED, arg=label, polling=20, timeout=timeout_ms)


async def test_board_shows_a_call_within_a_second_and_survives_a_restart(
    server: Server,
) -> None:
    from playwright.async_api import async_playwright

    first, second = await confirmed_today(count=2)
    await make_staff("th.clerk", offices=("GZ-TH",))
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            board = await (await browser.new_context(locale="zh-CN")).new_page()
            clerk = await (await browser.new_context(locale="zh-CN")).new_page()
            for page in (board, clerk):
                page.on("pageerror", lambda exc: errors.append(str(exc)))
            await board.goto(server.base + "/offices/GZ-TH/board")
            await board.wait_for_selector('#status[data-state="live"]')

            # Sign in: the desk page sends the clerk to the login page and back.
            await clerk.goto(server.base + "/staff/offices/GZ-TH/checkin")
            await clerk.wait_for_url("**/staff/login?next=*")
            await clerk.fill("#f-username", "th.clerk")
            await clerk.fill("#f-password", PASSWORD)
            async with clerk.expect_navigation(url="**/staff/offices/GZ-TH/checkin"):
                await clerk.click("form[action='/staff/login'] button[type=submit]")

            # Find the couple the way a handheld scanner does it: the reference, then
            # Enter; then the clerk ticks both people on the card and checks them in.
            assert await clerk.evaluate("document.activeElement.id") == "f-reference"
            async with clerk.expect_navigation():
                await clerk.keyboard.type(first["reference"])
                await clerk.keyboard.press("Enter")
            await clerk.check("#f-party_a")
            await clerk.check("#f-party_b")
            async with clerk.expect_navigation():
                await clerk.click("#checkin-submit")
            assert await clerk.text_content("#ticket-label") == "M001"
            await board.wait_for_function(
                "() => document.getElementById('next').textContent.includes('M001')",
                timeout=5000,
            )

            # Call them to counter 5; the board must show it within a second of the click.
            await clerk.click("nav.desk-nav a[href$='/queue']")
            await clerk.fill("#f-counter", "5")
            started = time.monotonic()
            await clerk.click("#call-next")
            await _shows_called(board, "M001", LIVE_WITHIN * 1000 + 500)
            elapsed = time.monotonic() - started
            assert elapsed < LIVE_WITHIN, f"board showed the call after {elapsed:.2f} s"
            assert "5" in (await board.text_content("#called tr.latest .counter") or "")
            await clerk.wait_for_selector("#no-current", state="detached")

            # A bearer token made before the restart still works after it (sessions are rows).
            async with httpx.AsyncClient(base_url=server.base) as api:
                login = await api.post(
                    "/api/v1/staff/login", json={"username": "th.clerk", "password": PASSWORD}
                )
                headers = {"Authorization": f"Bearer {login.json()['token']}"}

                await server.stop()
                await board.wait_for_selector(
                    '#status[data-state="reconnecting"]', timeout=RECONNECT_WITHIN
                )
                await server.start()
                await board.wait_for_selector(
                    '#status[data-state="live"]', timeout=RECONNECT_WITHIN
                )

                checked = await api.post(
                    "/api/v1/offices/GZ-TH/checkins",
                    json={"reference": second["reference"], "parties_present": ["a", "b"]},
                    headers=headers,
                )
                assert checked.status_code == 201, checked.text
                started = time.monotonic()
                called = await api.post(
                    "/api/v1/offices/GZ-TH/queue/call-next", json={"counter": "7"}, headers=headers
                )
                assert called.status_code == 200 and called.json()["label"] == "M002"
                await _shows_called(board, "M002", LIVE_WITHIN * 1000 + 500)
                elapsed = time.monotonic() - started
                assert elapsed < LIVE_WITHIN, f"after the restart: {elapsed:.2f} s"
        finally:
            await browser.close()
    assert not errors, errors
