"""Issue 14 items 12-13 in Chromium, zh-Hans and English, axe-core on every page: the
clerk reads both names, the slot, the pre-check state and the flags before ticking
"both present", sees them again with the ticket, and a second check-in names the
ticket instead of "status does not allow this", with the button visibly disabled."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.db.queue_tables import QueueTicket
from scheduler.db.tables import Appointment
from scheduler.kernel.i18n import translate
from tests.a11y import assert_accessible
from tests.helpers import make_office
from tests.servers import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.test_desk_pages import PASSWORD, confirmed_today, make_staff, one

pytestmark = pytest.mark.browser


async def _submit(page: Any, selector: str) -> None:
    async with page.expect_navigation():
        await page.click(selector)
    await assert_accessible(page)


@pytest.mark.parametrize(("browser_locale", "locale"), [("zh-CN", "zh-Hans"), ("en-US", "en")])
async def test_the_clerk_sees_who_is_there_before_and_after_the_ticket(
    db: None, tmp_path: Path, browser_locale: str, locale: str
) -> None:
    from playwright.async_api import async_playwright

    await make_office(code="GZ-TH", days_ahead=3)
    await make_staff("th.clerk", offices=("GZ-TH",))
    (couple,) = await confirmed_today()
    reference, a, b = couple["reference"], couple["a"]["name"], couple["b"]["name"]
    tz = ZoneInfo("Asia/Shanghai")
    slot = await one(Appointment.select(Appointment.slot.start_at, Appointment.slot.end_at))
    start, end = slot["slot.start_at"].astimezone(tz), slot["slot.end_at"].astimezone(tz)

    def t(key: str, **params: Any) -> str:
        return translate(locale, key, **params)

    errors: list[str] = []
    async with running_server(tmp_path / "server.log") as server, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale=browser_locale)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{server.base}/staff/offices/GZ-TH/checkin")
            await assert_accessible(page)
            await page.fill("#f-username", "th.clerk")
            await page.fill("#f-password", PASSWORD)
            await _submit(page, "form[action='/staff/login'] button[type=submit]")
            assert page.url.endswith("/staff/offices/GZ-TH/checkin")
            # Nothing to confirm before the couple is found.
            assert await page.locator("#f-party_a").count() == 0

            await page.fill("#f-reference", reference)
            await _submit(page, "#find-submit")
            assert a in await page.inner_text("#card-party-a")
            assert b in await page.inner_text("#card-party-b")
            assert await page.inner_text("#card-slot") == (
                f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} · {t('page.service.marriage')}"
            )
            assert await page.inner_text("#card-precheck") == t("precheck.status.not_submitted")
            flags = await page.inner_text("#card-flags")
            assert t("safety.flag.precheck.not_submitted") in flags
            # The ticks name the people: "<role>: <name> is here".
            assert a in await page.inner_text("label:has(#f-party_a)")
            assert b in await page.inner_text("label:has(#f-party_b)")
            assert await page.is_enabled("#checkin-submit")

            await page.check("#f-party_a")
            await page.check("#f-party_b")
            await _submit(page, "#checkin-submit")
            label = await page.inner_text("#ticket-label")
            assert label.startswith("M")
            # After the ticket: the same card, the names and the ticket next to each other.
            assert a in await page.inner_text("#card-party-a")
            assert label in await page.inner_text("#card-status")
            assert await page.locator("#confirm-form").count() == 0

            # The same couple again: said with the ticket, and no way to check in twice.
            await page.fill("#f-reference", reference)
            await _submit(page, "#find-submit")
            flags = await page.inner_text("#card-flags")
            checked_in = await one(QueueTicket.select().where(QueueTicket.label == label))
            at = checked_in["checked_in_at"].astimezone(tz)
            assert t("error.already-checked-in.waiting", label=label, time=f"{at:%H:%M}") in flags
            assert not await page.is_enabled("#checkin-submit")
            cursor = await page.evaluate(
                "getComputedStyle(document.querySelector('#checkin-submit')).cursor"
            )
            assert cursor == "not-allowed"
        finally:
            await browser.close()
    assert not errors, errors
