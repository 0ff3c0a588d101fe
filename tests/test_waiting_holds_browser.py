"""A couple refused ``slot-full`` because the slot's places to wait for a seat are
taken (issue 16) finds the day's waiting list on the booking form, walked in
Chromium in zh-Hans and en, with axe-core on every page visited. The slot still
shows a free seat: only the waiting list's verified couples can be offered it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_office, person
from tests.servers import running_server
from tests.test_couples_browser import (
    LOCALES,
    book,
    browser,  # noqa: F401 - the fixture
    checked,
    fill_couple,
    submit_form,
    to_form,
)

pytestmark = pytest.mark.browser

WORDS = {"zh-Hans": "加入当天的候补名单", "en": "Join this day's waiting list"}


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[str]:
    await make_office(slot_cap=2)
    # As deployed, but no waiting holds: the second couple at a 2-seat slot is refused.
    env = {"HOLD_UNCONFIRMED_PERCENT": "50", "HOLD_WAITING_PER_FREE_SEAT": "0"}
    async with running_server(tmp_path / "server.log", env=env) as running:
        yield running.base


async def test_a_couple_refused_slot_full_is_shown_the_waiting_list(
    server: str,
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    page = await browser.new_page(locale=LOCALES["zh-Hans"])
    await book(page, server, person(), person())  # holds the slot's unconfirmed share
    for locale, words in WORDS.items():
        page = await browser.new_page(locale=LOCALES[locale])
        await to_form(page, server)  # the slot still shows a free seat
        await fill_couple(page, person(), person())
        await submit_form(page)
        assert "/booking/" not in page.url
        summary = await page.text_content("#error-summary")
        assert summary is not None and words in summary, summary
        await checked(page)
        async with page.expect_navigation():
            await page.click("#waitlist-join")
        assert "/waitlist/GZ-TH/marriage/" in page.url
        assert await page.query_selector("form") is not None
        await checked(page)
