"""Issue 14 items 1, 2 and 4 in Chromium, in zh-Hans and in English, axe-core on every
page: the scope is chosen (never defaulted), the preview is required and is what the
run applies, the confirmation names what happens and, over several offices, asks for
their number; lifting confirms; the reason reaches the couples' calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.db.blackout_tables import Blackout, RescheduleRun
from scheduler.db.tables import Slot
from scheduler.kernel.i18n import translate
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.offices import reschedule
from tests.a11y import assert_accessible
from tests.helpers import make_office, person
from tests.servers import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.test_blackout_safety import _run_placements
from tests.test_desk_pages import PASSWORD, make_staff

pytestmark = pytest.mark.browser

REASON = {"zh-Hans": "停电检修", "en": "Power maintenance"}


async def _hold(office: str, day: date, count: int) -> list[tuple[str, str]]:
    """(reference, manage token) of ``count`` holds on ``day``, four per slot."""
    slots = (
        await Slot.select()
        .where((Slot.office.code == office) & (Slot.day == day) & (Slot.service == "marriage"))
        .order_by(Slot.start_at)
    )
    held = []
    for i in range(count):
        body = await booking.hold(
            booking.BookingInput(
                slot_id=slots[i // 4]["id"],
                service="marriage",
                party_a=booking.PartyInput(**person()),
                party_b=booking.PartyInput(**person()),
            ),
            now=datetime.now(UTC),
            settings=get_settings(),
        )
        held.append((body["reference"], body["manage_token"]))
    return held


async def _visit(page: Any, url: str) -> None:
    await page.goto(url)
    await assert_accessible(page)


async def _submit(page: Any, selector: str) -> None:
    async with page.expect_navigation():
        await page.click(selector)
    await assert_accessible(page)


@pytest.mark.parametrize(("browser_locale", "locale"), [("zh-CN", "zh-Hans"), ("en-US", "en")])
async def test_declaring_over_two_offices_is_deliberate(
    db: None, tmp_path: Path, browser_locale: str, locale: str
) -> None:
    from playwright.async_api import async_playwright

    for code in ("GZ-TH", "SZ-FT"):
        await make_office(code=code, slot_cap=4, day_cap=10, days_ahead=8)
    day = date.today() + timedelta(days=3)
    held = await _hold("GZ-TH", day, 8) + await _hold("SZ-FT", day, 8)
    await make_staff("root", role="superadmin")

    def t(key: str, **params: Any) -> str:
        return translate(locale, key, **params)

    errors: list[str] = []
    async with running_server(tmp_path / "server.log") as server, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale=browser_locale)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await _visit(page, f"{server.base}/staff/admin/blackouts")
            await page.fill("#f-username", "root")
            await page.fill("#f-password", PASSWORD)
            await _submit(page, "form[action='/staff/login'] button[type=submit]")
            assert page.url.endswith("/staff/admin/blackouts")

            # No scope is pre-chosen and nothing can be declared from the form itself.
            assert await page.locator("input[name=scope]:checked").count() == 0
            assert await page.locator("#declare-button").count() == 0
            await page.select_option("#f-offices", ["GZ-TH", "SZ-FT"])
            await page.check("#scope-all")  # offices picked, yet "all": said, not ignored
            await page.fill("#f-start_date", day.isoformat())
            await page.fill("#f-end_date", day.isoformat())
            await page.fill("#f-reason_zh", REASON["zh-Hans"])
            await page.fill("#f-reason_en", REASON["en"])
            await _submit(page, "#preview-button")
            assert t("error.invalid-input.scope-conflict") in await page.inner_text(
                "#declare-error"
            )
            assert await page.locator("#confirm").count() == 0

            await page.check("#scope-offices")
            await _submit(page, "#preview-button")
            assert await page.locator("#confirm").count() == 1
            # The preview, by reference and local time; nobody lands on the closed day.
            rows = await page.eval_on_selector_all(
                "#pv-placements tr[data-reference]",
                "rows => rows.map(r =>"
                " [r.dataset.reference, r.querySelector('.pv-to').textContent])",
            )
            shown = {ref: to.strip() for ref, to in rows}
            assert sorted(shown) == sorted(ref for ref, _ in held)
            assert not any(day.isoformat() in to for to in shown.values())
            assert "#" not in await page.inner_text("#preview")
            summary = await page.inner_text("#confirm-summary")
            assert "GZ-TH, SZ-FT" in summary and t("admin.kind.closed") in summary
            assert await page.inner_text("#cf-sms") == "32"
            moved = int(await page.inner_text("#cf-moved"))
            assert moved + int(await page.inner_text("#cf-unplaceable")) == 16
            # The destructive button does not look like Preview.
            colours = await page.evaluate(
                "() => ['#declare-button', '#preview-button'].map(s =>"
                " getComputedStyle(document.querySelector(s)).backgroundColor)"
            )
            assert colours[0] != colours[1], colours
            assert "⚠" in await page.inner_text("#declare-button")

            # Over two offices the number must be typed; a wrong one is explained in place.
            await page.fill("#f-confirm_offices", "1")
            await _submit(page, "#declare-button")
            assert t("error.invalid-input.confirm-offices", count=2) in await page.inner_text(
                "#declare-error"
            )
            assert await Blackout.count() == 0
            await page.fill("#f-confirm_offices", "2")
            await _submit(page, "#declare-button")
            run = await RescheduleRun.select().first()
            assert run is not None and page.url.endswith(f"/staff/admin/runs/{run['id']}")

            # What the run applies is what the preview showed.
            assert await reschedule.execute(
                run["id"], "test", datetime.now(UTC), batch=5, settings=get_settings()
            )
            applied = await _run_placements(run["id"])
            assert {
                ref: " ".join(x for x in to if x) if to[0] else t("admin.preview.no_seat")
                for ref, to in applied.items()
            } == shown

            # The couples' calendar and move picker say why, in the page's language.
            month = f"{day:%Y-%m}"
            await _visit(page, f"{server.base}/book/GZ-TH/marriage?month={month}")
            assert REASON[locale] in await page.inner_text(f"#reason-{day.isoformat()}")
            cell = f'td[data-date="{day.isoformat()}"] .why'
            assert await page.inner_text(cell) == REASON[locale]
            reference, token = held[0]
            await page.goto(f"{server.base}/manage/{reference}?token={token}")
            await _visit(page, f"{server.base}/manage/{reference}/move?month={month}")
            assert REASON[locale] in await page.inner_text("#closures")

            # Lifting: a confirmation naming what reopens, then the notice.
            blackout = await Blackout.select().first()
            assert blackout is not None
            await _visit(page, f"{server.base}/staff/admin/blackouts")
            await _submit(page, f"#lift-{blackout['id']}")
            assert "GZ-TH, SZ-FT" in await page.inner_text("#lift-summary")
            assert (await Blackout.select().first() or {})["lifted_at"] is None
            await _submit(page, "#lift-button")
            assert t("admin.notice.lifted") in await page.inner_text("#notice")
        finally:
            await browser.close()
    assert not errors, errors
