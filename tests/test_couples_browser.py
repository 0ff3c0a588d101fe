"""Couples' dead ends, walked in Chromium (issue 14, items 5-11), in zh-Hans and en,
with axe-core (WCAG 2.2 AA, plus the experimental label-content-name-mismatch rule
issue 14 names) on every page visited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.a11y import assert_accessible, describe
from tests.helpers import make_office, person
from tests.servers import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.test_couple_access_api import latest_code

pytestmark = pytest.mark.browser

LOCALES = {"zh-Hans": "zh-CN", "en": "en-US"}
ALL_LOCALES = LOCALES | {"zh-Hant": "zh-TW"}
WRONG = "000000"


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[str]:
    await make_office(slot_cap=2)
    async with running_server(tmp_path / "server.log") as running:
        yield running.base


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def checked(page: Any) -> None:
    """axe at WCAG 2.2 AA, and the accessible-name rule axe keeps experimental."""
    await assert_accessible(page)
    result = await page.evaluate(
        "axe.run(document, {runOnly: {type: 'rule', values: ['label-content-name-mismatch']}})"
    )
    assert not result["violations"], describe(result["violations"])


NAMES_JS = """els => {
    axe.setup(document);
    try {
        return els.map(el => {
            const shown = Array.from(el.childNodes)
                .filter(n => !(n.classList && n.classList.contains('visually-hidden'))
                    && !(n.getAttribute && n.getAttribute('aria-hidden') === 'true'))
                .map(n => n.textContent).join('').replace(/\\s+/g, ' ').trim();
            const node = axe.utils.getNodeFromTree(el);
            const name = axe.commons.text.accessibleTextVirtual(node).replace(/\\s+/g, ' ').trim();
            return [shown, name];
        });
    } finally {
        axe.teardown();
    }
}"""


async def assert_names_start_with_visible_text(page: Any, selector: str) -> int:
    """Each matching control's accessible name (as axe computes it) starts with the
    text it shows; returns how many were checked."""
    pairs = await page.eval_on_selector_all(selector, NAMES_JS)
    for shown, name in pairs:
        assert shown and name.startswith(shown), (shown, name)
    return len(pairs)


async def new_page(browser: Any, locale: str) -> Any:
    page = await browser.new_page(locale=ALL_LOCALES[locale])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    return page


async def pick_day(page: Any, skip: int = 0) -> str:
    """Click an open day at least two days ahead (``skip`` more open days on)."""
    earliest = (date.today() + timedelta(days=2)).isoformat()
    for _ in range(3):
        await page.wait_for_selector("#picker")
        days = await page.eval_on_selector_all(
            'td[data-status="open"]', "cells => cells.map(c => c.dataset.date)"
        )
        later = [d for d in days if d >= earliest]
        if len(later) > skip:
            await page.click(f"#day-{later[skip]}")
            await page.wait_for_selector('#slots-title:not(p)[tabindex="-1"]')
            return str(later[skip])
        await page.click("#month-next")
        await page.wait_for_timeout(300)
    raise AssertionError("no open day")


async def fill_couple(page: Any, a: dict[str, str], b: dict[str, str]) -> None:
    for role, who in (("a", a), ("b", b)):
        for field in ("name", "id_number", "phone"):
            await page.fill(f"#f-party_{role}-{field}", who[field])


async def to_form(page: Any, base: str, skip: int = 0) -> None:
    await page.goto(base + "/book/GZ-TH/marriage")
    await checked(page)
    await pick_day(page, skip)
    await checked(page)
    await page.click("#slots a.slot")
    await page.wait_for_selector("form[action='/book']")
    await checked(page)


async def submit_form(page: Any) -> None:
    async with page.expect_navigation():
        await page.click("form[action='/book'] button[type=submit]")


async def book(page: Any, base: str, a: dict[str, str], b: dict[str, str]) -> str:
    await to_form(page, base)
    await fill_couple(page, a, b)
    await submit_form(page)
    assert "/booking/" in page.url, await page.text_content("main")
    reference = await page.get_attribute("[data-reference]", "data-reference")
    assert reference
    await checked(page)
    return str(reference)


@pytest.mark.parametrize("locale", LOCALES)
async def test_locked_codes_release_and_book_again(server: str, browser: Any, locale: str) -> None:
    from scheduler.kernel.i18n import translate

    page = await new_page(browser, locale)
    a, b = person(), person()
    await book(page, server, a, b)
    assert translate(locale, "couples.codes.attempts_left", n=5) in await page.text_content(
        "#code-a-left"
    )
    for left in (4, 3, 2, 1):
        await page.fill("#code-a", WRONG)
        async with page.expect_navigation():
            await page.click("form:has(#code-a) button[type=submit]")
        error = await page.text_content("#code-a-error")
        assert error == translate(locale, "error.wrong-code.left", attempts_left=left)
        described = await page.get_attribute("#code-a", "aria-describedby")
        assert "code-a-error" in described and "code-a-left" in described
        await checked(page)
    await page.fill("#code-a", WRONG)
    async with page.expect_navigation():
        await page.click("form:has(#code-a) button[type=submit]")
    # Locked: it says what happened, offers no code box, and booking again works.
    assert await page.locator("#locked").count() == 1
    assert translate(locale, "couples.locked.title") in await page.text_content("#locked")
    assert await page.locator("input[name=code]").count() == 0
    await checked(page)
    await page.click("#book-again")
    await page.wait_for_selector("#picker")
    await checked(page)
    await page.click("#slots a.slot")
    await page.wait_for_selector("form[action='/book']")
    await fill_couple(page, a, b)
    await submit_form(page)
    assert "/booking/" in page.url, await page.text_content("main")
    await checked(page)
    assert not page.js_errors


@pytest.mark.parametrize("locale", LOCALES)
async def test_partner_confirms_on_own_phone(server: str, browser: Any, locale: str) -> None:
    from scheduler.kernel.i18n import translate

    filler = await new_page(browser, locale)
    a, b = person(), person()
    reference = await book(filler, server, a, b)
    # The filler has B's code texted again from the code page.
    async with filler.expect_navigation():
        await filler.click("#resend-b")
    assert await filler.locator("#resent-b").count() == 1
    assert translate(locale, "couples.codes.resend", n=2) in await filler.text_content("#resend-b")
    await checked(filler)
    # A confirms on the filler's page.
    await filler.fill("#code-a", await latest_code(a["phone"]))
    async with filler.expect_navigation():
        await filler.click("form:has(#code-a) button[type=submit]")
    await checked(filler)

    phone = await browser.new_page(locale=LOCALES[locale], viewport={"width": 390, "height": 844})
    await phone.goto(server + "/c")
    await checked(phone)
    await phone.fill("#f-reference", reference)
    await phone.fill("#f-phone", b["phone"])
    await phone.fill("#f-code", WRONG)
    async with phone.expect_navigation():
        await phone.click("#self-confirm button[type=submit]")
    assert translate(locale, "couples.self.not_found") in await phone.text_content("main")
    await checked(phone)
    # B asks for a new code from the own-phone page: same answer whatever matched.
    await phone.fill("#r-reference", reference)
    await phone.fill("#r-phone", b["phone"])
    async with phone.expect_navigation():
        await phone.click("#self-resend button[type=submit]")
    assert await phone.locator("#resent").count() == 1
    await checked(phone)
    await phone.fill("#f-reference", reference)
    await phone.fill("#f-phone", b["phone"])
    await phone.fill("#f-code", await latest_code(b["phone"]))
    async with phone.expect_navigation():
        await phone.click("#self-confirm button[type=submit]")
    assert await phone.get_attribute("#self-status", "data-status") == "booked"
    await checked(phone)
    # The filler's page shows the booking confirmed.
    await filler.reload()
    assert "✓" in (await filler.text_content("h1") or "")
    await checked(filler)
    assert not filler.js_errors


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_field_error_at_once(server: str, browser: Any, locale: str) -> None:
    from scheduler.kernel.i18n import translate

    page = await new_page(browser, locale)
    await to_form(page, server)
    a = person() | {"name": "", "id_number": "12345"}
    b = person() | {"phone": "12"}
    await fill_couple(page, a, b)
    await submit_form(page)
    summary = page.locator("#error-summary li")
    assert await summary.count() == 3
    for field in ("party_a-name", "party_a-id_number", "party_b-phone"):
        box = f"#f-{field}"
        assert await page.get_attribute(box, "aria-invalid") == "true"
        described = await page.get_attribute(box, "aria-describedby")
        assert described == f"f-{field}-error"
        assert await page.text_content(f"#{described}")
        assert await page.locator(f'#error-summary a[href="{box}"]').count() == 1
    assert await page.get_attribute("#f-party_b-name", "aria-invalid") is None
    # What was typed stays (the IDs too), so only the wrong fields are retyped.
    assert await page.input_value("#f-party_b-id_number") == b["id_number"]
    await checked(page)

    # The pre-check form names every missing field at once too.
    reference, token = await confirmed_booking(server, locale)
    await page.goto(f"{server}/manage/{reference}?token={token}")
    await checked(page)
    await page.click("#precheck-link")
    await page.wait_for_selector("form[action$='/precheck']")
    await checked(page)
    # Nationality is a choice list (CN proposed); the rest is empty on a fresh form.
    async with page.expect_navigation():
        await page.click("form[action$='/precheck'] button[type=submit]")
    items = await page.locator("#error-summary li").count()
    assert items >= 6, await page.text_content("#error-summary")  # occupation, education... x2
    for role in ("a", "b"):
        for field in ("occupation", "education"):
            box = f"#f-party_{role}-{field}"
            assert await page.get_attribute(box, "aria-invalid") == "true"
            assert await page.get_attribute(box, "aria-describedby") == box[1:] + "-error"
    assert translate(locale, "page.form.errors") in await page.text_content("#error-summary")
    await checked(page)
    assert not page.js_errors


async def confirmed_booking(server: str, locale: str) -> tuple[str, str]:
    import httpx

    async with httpx.AsyncClient(base_url=server) as client:
        tomorrow = date.today() + timedelta(days=3)
        days = (
            await client.get(
                "/api/v1/offices/GZ-TH/availability",
                params={"service": "marriage", "from": tomorrow.isoformat()},
            )
        ).json()["days"]
        slot = next(s for d in days if d["status"] == "open" for s in d["slots"] if s["remaining"])
        a, b = person(), person()
        body = {"slot_id": slot["id"], "service": "marriage", "locale": locale}
        held = await client.post("/api/v1/appointments", json=body | {"party_a": a, "party_b": b})
        assert held.status_code == 201, held.text
        reference = held.json()["reference"]
        for role, who in (("a", a), ("b", b)):
            code = await latest_code(who["phone"])
            resp = await client.post(
                f"/api/v1/appointments/{reference}/confirm", json={"party": role, "code": code}
            )
            assert resp.status_code == 200, resp.text
        return str(reference), str(held.json()["manage_token"])


@pytest.mark.parametrize("locale", LOCALES)
async def test_slot_full_keeps_what_was_typed(server: str, browser: Any, locale: str) -> None:
    import httpx

    page = await new_page(browser, locale)
    await to_form(page, server)
    a, b = person(), person()
    await fill_couple(page, a, b)
    # Meanwhile two other couples take the slot's two seats.
    slot_id = int(await page.input_value("input[name=slot_id]"))
    async with httpx.AsyncClient(base_url=server) as client:
        for _ in range(2):
            body = {"slot_id": slot_id, "service": "marriage", "party_a": person()}
            resp = await client.post("/api/v1/appointments", json=body | {"party_b": person()})
            assert resp.status_code == 201, resp.text
    await submit_form(page)
    assert await page.locator("#error-summary").count() == 1
    await checked(page)
    await page.click("#error-summary a[href*='#slots']")
    await page.wait_for_selector("#picker")
    await checked(page)
    await page.click("#slots a.slot")
    await page.wait_for_selector("form[action='/book']")
    for role, who in (("a", a), ("b", b)):
        for field in ("name", "id_number", "phone"):
            assert await page.input_value(f"#f-party_{role}-{field}") == who[field]
    await checked(page)
    await submit_form(page)
    assert "/booking/" in page.url
    # Once booked, the draft is gone: a new form starts empty.
    await to_form(page, server, skip=1)
    assert await page.input_value("#f-party_a-name") == ""
    assert not page.js_errors


@pytest.mark.parametrize("locale", LOCALES)
async def test_lost_manage_code_is_recovered(server: str, browser: Any, locale: str) -> None:
    from scheduler.kernel.i18n import translate

    reference, token = await confirmed_booking(server, locale)
    page = await new_page(browser, locale)
    await page.goto(server + "/manage")
    await checked(page)
    await page.fill("#f-reference", reference)
    await page.fill("#f-token", "x" * 32)
    async with page.expect_navigation():
        await page.click("form[action='/manage'] button[type=submit]")
    main = await page.text_content("main")
    assert translate(locale, "couples.lookup.not_found") in main
    assert "链接" not in main and "link" not in main.lower().replace("recover", "")
    await checked(page)
    await page.click("#recover-link")
    await page.wait_for_selector("#recover-start")
    assert await page.input_value("#f-reference") == reference
    await checked(page)
    phone = await partner_phone(reference)
    await page.fill("#f-phone", phone)
    async with page.expect_navigation():
        await page.click("#recover-start button[type=submit]")
    await checked(page)
    await page.fill("#f-code", WRONG)
    async with page.expect_navigation():
        await page.click("#recover-code button[type=submit]")
    assert translate(locale, "couples.recover.not_found") in await page.text_content("main")
    await checked(page)
    await page.fill("#f-code", await latest_code(phone, "manage_recovery"))
    async with page.expect_navigation():
        await page.click("#recover-code button[type=submit]")
    new_token = await page.text_content("#new-token")
    assert new_token and new_token != token
    await checked(page)
    await page.click("#to-manage")
    await page.wait_for_selector("#precheck-link")
    await checked(page)
    # Moving asks first (item 10): the picker, then a page naming both times.
    await page.click(f'a[href="/manage/{reference}/move"]')
    await pick_day(page, skip=1)
    await checked(page)
    assert await assert_names_start_with_visible_text(page, "td.day a, #slots button.slot") > 3
    await page.click("#slots button.slot")
    await page.wait_for_selector("#move-confirm")
    await checked(page)
    async with page.expect_navigation():
        await page.click("#move-confirm")
    assert translate(locale, "page.manage.notice.moved") in await page.text_content("main")
    await checked(page)
    assert not page.js_errors


async def partner_phone(reference: str) -> str:
    from scheduler.db.appointments import load

    loaded = await load(reference)
    assert loaded is not None
    return str(loaded.party("b").phone)


@pytest.mark.parametrize("locale", ALL_LOCALES)
async def test_day_links_name_and_loading_state(server: str, browser: Any, locale: str) -> None:
    page = await new_page(browser, locale)
    await page.goto(server + "/book/GZ-TH/marriage")
    await checked(page)
    # The name rule really runs here: a link named unlike its text is caught.
    broken = await page.evaluate(
        """async () => {
            const a = document.createElement('a');
            a.href = '#'; a.textContent = '15'; a.setAttribute('aria-label', 'Tuesday open');
            document.querySelector('main').append(a);
            const r = await axe.run(document, {runOnly: {type: 'rule',
                values: ['label-content-name-mismatch']}});
            a.remove();
            return r.violations.length;
        }"""
    )
    assert broken == 1
    # A slow network (1.5 s): the tap shows a loading state at once.
    async def slow(route: Any) -> None:
        if route.request.headers.get("hx-request"):
            await page.wait_for_timeout(1500)
        await route.continue_()

    await page.route("**/book/GZ-TH/marriage?*", slow)
    earliest = (date.today() + timedelta(days=2)).isoformat()
    days = await page.eval_on_selector_all(
        'td[data-status="open"]', "cells => cells.map(c => c.dataset.date)"
    )
    day = next(d for d in days if d >= earliest)
    await page.click(f"#day-{day}")
    await page.wait_for_selector("#picker-loading.htmx-request", state="visible", timeout=1000)
    assert await page.get_attribute("#picker", "aria-busy") == "true"
    await page.wait_for_selector("#slots a.slot", timeout=10_000)
    assert not await page.is_visible("#picker-loading")
    await checked(page)
    assert await assert_names_start_with_visible_text(page, "td.day a, .month-nav a") > 5
    assert await assert_names_start_with_visible_text(page, "#slots .slot") > 3
    assert not page.js_errors
