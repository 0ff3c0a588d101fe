"""In a real browser (uvicorn in a subprocess, headless Chromium, axe-core WCAG 2.2 AA):
the checklists from the rule set on the confirmation and manage pages, the pre-check
form with its nationality list and a passport holder's birth date (refused under
age, then saved), and the admin's rule sets page with a refused and an added version."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.usecases.policy import rules
from tests.a11y import assert_accessible
from tests.helpers import booking_body, make_office, person, sms_codes
from tests.servers import CHROMIUM, CHROMIUM_ARGS, Server, running_server
from tests.test_desk_pages import PASSWORD, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture
async def server(db: None, tmp_path: Path) -> AsyncIterator[Server]:
    rules.invalidate()
    await make_office(code="GZ-YX", designated=True, days_ahead=6)
    await make_staff("root", role="superadmin")
    async with running_server(tmp_path / "server.log") as running:
        yield running
    rules.invalidate()


async def _booked(base: str) -> tuple[dict[str, Any], date]:
    """A confirmed couple at GZ-YX: a mainland resident and a passport holder."""
    start = date.today() + timedelta(days=2)
    async with httpx.AsyncClient(base_url=base) as api:
        resp = await api.get(
            "/api/v1/offices/GZ-YX/availability",
            params={
                "service": "marriage",
                "from": start.isoformat(),
                "to": (start + timedelta(days=5)).isoformat(),
            },
        )
        day = next(d for d in resp.json()["days"] if d["status"] == "open")
        foreigner = person() | {"id_type": "passport", "id_number": "E55443322", "name": "Anna"}
        body = booking_body(day["slots"][0]["id"], b=foreigner, locale="en")
        held = (await api.post("/api/v1/appointments", json=body)).json()
        codes = await sms_codes(held["reference"])
        for role in ("a", "b"):
            resp = await api.post(
                f"/api/v1/appointments/{held['reference']}/confirm",
                json={"party": role, "code": codes[role]},
            )
            assert resp.status_code == 200, resp.text
    return held, date.fromisoformat(day["date"])


async def test_checklists_and_the_precheck_form_in_a_browser(server: Server) -> None:
    from playwright.async_api import async_playwright

    held, day = await _booked(server.base)
    ref = held["reference"]
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(locale="en-US")).new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # The manage link sets the token cookie and lands on the manage page.
            await page.goto(f"{server.base}/manage/{ref}?token={held['manage_token']}")
            await page.wait_for_selector("#checklist")
            mainland = await page.locator("ul.checklist[data-party=a] li").all_text_contents()
            assert mainland[0] == "Your valid resident identity card"
            assert not any("household" in t.lower() for t in mainland)
            passport = await page.locator("ul.checklist[data-party=b] li").all_text_contents()
            assert passport[0].startswith("Your valid passport")
            await assert_accessible(page)

            # The confirmation page shows the same checklist (zh-Hant this time).
            await page.goto(f"{server.base}/booking/{ref}?lang=zh-Hant")
            await page.wait_for_selector("#checklist")
            assert "本人有效的居民身分證" in (await page.text_content("#checklist") or "")
            assert "戶口簿" not in (await page.text_content("main") or "")
            await assert_accessible(page)

            await page.goto(f"{server.base}/manage/{ref}/precheck?lang=en")
            await page.wait_for_selector("#f-party_b-nationality")
            options = await page.locator("#f-party_a-nationality option").all_text_contents()
            assert options[:4] == [
                "China (mainland)",
                "Hong Kong, China",
                "Macao, China",
                "Taiwan, China",
            ]
            assert await page.locator("#f-party_a-birth_date").count() == 0  # on the ID card
            assert await page.locator("[name='party_a.hukou_address']").count() == 0
            await page.select_option("#f-party_b-nationality", "FR")
            for role in ("a", "b"):
                await page.fill(f"#f-party_{role}-occupation", "engineer")
                await page.select_option(f"#f-party_{role}-education", "bachelor")
                await page.select_option(f"#f-party_{role}-marital_status", "unmarried")
            young = day.replace(year=day.year - 20) + timedelta(days=1)
            await page.fill("#f-party_b-birth_date", young.isoformat())
            await page.select_option("#f-party_b-sex", "female")
            await page.check("[name='party_b.doc.passport']")
            async with page.expect_navigation():
                await page.click("form[action$='/precheck'] button[type=submit]")
            error = await page.text_content("#f-party_b-birth_date-error")
            assert error is not None and "20" in error and "Party B" in error
            await assert_accessible(page)
            await page.fill("#f-party_b-birth_date", (young - timedelta(days=1)).isoformat())
            async with page.expect_navigation():
                await page.click("form[action$='/precheck'] button[type=submit]")
            assert await page.get_attribute("#precheck-status", "data-status") == "submitted"
            await assert_accessible(page)
        finally:
            await browser.close()
    assert errors == []


async def test_the_admin_rules_page_in_a_browser(server: Server) -> None:
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(locale="zh-CN")).new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(server.base + "/staff/admin/rules")
            await page.wait_for_url("**/staff/login?next=*")
            await page.fill("#f-username", "root")
            await page.fill("#f-password", PASSWORD)
            async with page.expect_navigation(url="**/staff/admin/rules"):
                await page.click("form[action='/staff/login'] button[type=submit]")
            assert await page.get_attribute("#in-force", "data-date") == "2025-05-10"
            row = await page.text_content("#rule-marriage-mainland")
            assert row is not None and "居民身份证" in row and "户口簿" not in row
            assert "GZ-YX" in (await page.text_content("#designated-offices") or "")
            await assert_accessible(page)

            await page.fill("#f-document", "{not json")
            async with page.expect_navigation():
                await page.click("#rules-form button[type=submit]")
            assert await page.is_visible("#rules-error")
            await assert_accessible(page)

            doc = copy.deepcopy(dict(rules.shipped()[0].raw))
            doc["effective_from"] = (date.today() + timedelta(days=30)).isoformat()
            await page.fill("#f-document", json.dumps(doc, ensure_ascii=False))
            async with page.expect_navigation(url="**/staff/admin/rules?notice=added"):
                await page.click("#rules-form button[type=submit]")
            assert await page.is_visible(f"#version-{doc['effective_from']}")
            await assert_accessible(page)
        finally:
            await browser.close()
    assert errors == []
