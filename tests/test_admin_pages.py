"""The admin pages: blackouts previewed without effect, declared (a reschedule run
whose progress page shows the figures), lifted; the hot-date calendar. Clerks get
403, anonymous visitors the login page, admins only their own offices."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.db.audit import NamedActor
from scheduler.db.blackout_tables import Blackout, RescheduleRun
from scheduler.db.tables import AuditLog, Slot
from scheduler.domain.hotdates import hot_dates
from scheduler.kernel.i18n import translate
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.offices import blackouts, reschedule
from tests.helpers import make_office, person
from tests.servers import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.test_desk_pages import PASSWORD, make_staff, one, post_form, says, sign_in

ADMIN_PAGES = ["/staff/admin/blackouts", "/staff/admin/hot-dates", "/staff/admin/runs/1"]


async def _book_day(office: str, count: int) -> date:
    """``count`` holds on the first slots of the day after tomorrow (office GZ-TH's rules)."""
    day = date.today() + timedelta(days=2)
    slots = await Slot.select().where(
        (Slot.office.code == office) & (Slot.day == day) & (Slot.service == "marriage")
    )
    assert slots, "make_office opens every day"
    for i in range(count):
        await booking.hold(
            booking.BookingInput(
                slot_id=slots[i % len(slots)]["id"],
                service="marriage",
                party_a=booking.PartyInput(**person()),
                party_b=booking.PartyInput(**person()),
            ),
            now=datetime.now(UTC),
            settings=get_settings(),
        )
    return day


def closed(day: date, **extra: str) -> dict[str, str]:
    return {
        "scope": "offices",
        "offices": "GZ-TH",
        "start_date": day.isoformat(),
        "end_date": day.isoformat(),
        "kind": "closed",
        "reason_zh": "疫情防控",
        "reason_en": "Epidemic control",
        "cap_percent": "50",
        "action": "preview",
    } | extra


def confirm_fields(text: str) -> dict[str, Any]:
    """The confirmation step's form as the browser sends it (hidden copy + token)."""
    form = text.split('id="confirm-form"', 1)[1].split("</form>", 1)[0]
    fields: dict[str, Any] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form):
        if name == "_csrf_token":
            continue
        value = html.unescape(value)
        if name in ("offices", "services"):
            fields.setdefault(name, []).append(value)
        else:
            fields[name] = value
    return fields | {"action": "declare"}


async def declare_by_pages(
    client: httpx.AsyncClient, form: dict[str, Any], **extra: str
) -> httpx.Response:
    """Preview, then the confirmation step's button (``extra``: e.g. the typed count)."""
    preview = await post_form(client, "/staff/admin/blackouts", form | {"action": "preview"})
    assert preview.status_code == 200 and 'id="confirm-form"' in preview.text, preview.text
    return await post_form(client, "/staff/admin/blackouts", confirm_fields(preview.text) | extra)


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: None) -> httpx.AsyncClient:
    """Offices GZ-TH and SZ-FT (one region), an admin of GZ-TH signed in."""
    await make_office(code="GZ-TH", days_ahead=5)
    await make_office(code="SZ-FT", days_ahead=5)
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await sign_in(client, "th.admin")
    return client


async def test_anonymous_go_to_sign_in_and_clerks_are_forbidden(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(days_ahead=3)
    for url in ADMIN_PAGES:
        resp = await client.get(url)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/staff/login")
    await make_staff("th.clerk", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    for url in ADMIN_PAGES:
        assert (await client.get(url)).status_code == 403, url
    day = date.today() + timedelta(days=2)
    for url in ("/staff/admin/blackouts", "/staff/admin/blackouts/1/lift"):
        resp = await post_form(client, url, closed(day, action="declare"))
        assert resp.status_code == 403, url
    assert await Blackout.count() == 0
    home = await client.get("/staff/")
    assert "/staff/admin/blackouts" not in home.text and "/staff/offices/" in home.text


async def test_preview_shows_the_figures_and_changes_nothing(admin: httpx.AsyncClient) -> None:
    day = await _book_day("GZ-TH", 6)
    audit_before = await AuditLog.count()
    page = await admin.get("/staff/admin/blackouts")
    assert page.status_code == 200 and 'name="_csrf_token"' in page.text
    resp = await post_form(admin, "/staff/admin/blackouts", closed(day))
    assert resp.status_code == 200, resp.text
    assert says(resp, "admin.preview.nothing_changed")
    assert re.search(r'id="pv-affected">6<', resp.text)
    assert re.search(r'id="pv-sms">12<', resp.text)
    segments = re.search(r'id="pv-segments">(\d+)<', resp.text)
    assert segments and int(segments.group(1)) >= 12
    assert "<td>GZ-TH</td>" in resp.text and f"<td>{day.isoformat()}</td><td>6</td>" in resp.text
    # What was typed stays in the form, ready to declare.
    assert 'value="疫情防控"' in resp.text and '<option value="GZ-TH" selected>' in resp.text
    assert await Blackout.count() == 0 and await RescheduleRun.count() == 0
    assert not await Slot.exists().where(Slot.blocked.eq(True))
    assert await AuditLog.count() == audit_before


async def test_declare_starts_a_run_whose_progress_page_shows_the_numbers(
    admin: httpx.AsyncClient,
) -> None:
    day = await _book_day("GZ-TH", 5)
    resp = await declare_by_pages(admin, closed(day))
    assert resp.status_code == 303, resp.text
    run = await RescheduleRun.select().first()
    assert run is not None and run["total"] == 5
    assert resp.headers["location"] == f"/staff/admin/runs/{run['id']}"
    page = await admin.get(resp.headers["location"])
    assert page.status_code == 200
    assert '<progress id="run-bar" max="5" value="0">' in page.text
    assert 'hx-trigger="every 1s"' in page.text  # polls while the run goes on
    assert f'hx-get="/staff/admin/runs/{run["id"]}/progress"' in page.text
    assert "疫情防控" in page.text

    assert await reschedule.execute(run["id"], "test", datetime.now(UTC), settings=get_settings())
    bar = await admin.get(f"/staff/admin/runs/{run['id']}/progress", params={"lang": "en"})
    assert bar.status_code == 200 and "<html" not in bar.text  # the partial alone
    done = await one(RescheduleRun.select().where(RescheduleRun.id == run["id"]))
    handled = done["moved"] + done["needs_rebooking"]
    assert handled == 5
    assert f'<progress id="run-bar" max="5" value="{handled}">' in bar.text
    assert re.search(r'id="sms-queued">10<', bar.text)
    assert says(
        bar,
        "admin.run.counts",
        "en",
        handled=5,
        total=5,
        moved=done["moved"],
        needs_rebooking=done["needs_rebooking"],
    )
    listed = await admin.get("/staff/admin/blackouts")
    assert f'href="/staff/admin/runs/{run["id"]}"' in listed.text


async def test_bad_input_is_explained_in_place_and_changes_nothing(
    admin: httpx.AsyncClient,
) -> None:
    day = date.today() + timedelta(days=3)
    cases = [
        (closed(day, end_date=(day - timedelta(days=1)).isoformat()), 422, "range-order"),
        (closed(day, reason_zh=""), 422, "reason-required"),
        (closed(day, start_date="2020-01-01", end_date="2020-01-02"), 422, "past-date"),
        (closed(day, start_time="10:00"), 422, "time-pair"),
        (closed(day, cap_percent="150"), 422, None),
    ]
    for form, status, reason in cases:
        resp = await post_form(admin, "/staff/admin/blackouts", form | {"action": "declare"})
        assert resp.status_code == status, (form, resp.text)
        assert 'id="declare-error"' in resp.text
        if reason:
            assert says(resp, f"error.invalid-input.{reason}"), reason
    # Another office than the admin's: not theirs (404), said in place.
    other = await post_form(admin, "/staff/admin/blackouts", closed(day, offices="SZ-FT"))
    assert other.status_code == 404 and says(other, "admin.error.scope")
    assert await Blackout.count() == 0


async def test_lift_reopens_and_the_list_shows_only_own_offices(
    admin: httpx.AsyncClient,
) -> None:
    day = date.today() + timedelta(days=3)
    resp = await declare_by_pages(admin, closed(day, kind="no_new_bookings"))
    assert resp.status_code == 303 and resp.headers["location"].endswith("notice=declared")
    assert await RescheduleRun.count() == 0  # nobody is moved: no run
    blackout = await one(Blackout.select())
    assert await Slot.exists().where(Slot.blocked.eq(True))
    page = await admin.get("/staff/admin/blackouts")
    assert f'href="/staff/admin/blackouts/{blackout["id"]}/lift"' in page.text
    # Lifting is confirmed: the first step only says what reopens.
    for step in (
        await admin.get(f"/staff/admin/blackouts/{blackout['id']}/lift"),
        await post_form(admin, f"/staff/admin/blackouts/{blackout['id']}/lift"),
    ):
        assert step.status_code == 200 and 'id="lift-form"' in step.text
        assert says(step, "safety.lift.effect") and "GZ-TH" in step.text
    assert (await one(Blackout.select()))["lifted_at"] is None
    lifted = await post_form(
        admin, f"/staff/admin/blackouts/{blackout['id']}/lift", {"confirm": "yes"}
    )
    assert lifted.status_code == 303 and lifted.headers["location"].endswith("notice=lifted")
    assert (await one(Blackout.select()))["lifted_at"] is not None
    assert not await Slot.exists().where(Slot.blocked.eq(True))
    twice = await post_form(
        admin, f"/staff/admin/blackouts/{blackout['id']}/lift", {"confirm": "yes"}
    )
    assert twice.status_code == 409 and says(twice, "error.not-pending")

    # Futian's blackout and its run are not the Tianhe admin's business.
    await make_staff("root", role="superadmin")
    await sign_in(admin, "root")
    await _book_day("SZ-FT", 1)
    resp = await declare_by_pages(admin, closed(day - timedelta(days=1), offices="SZ-FT"))
    futian_run = resp.headers["location"]
    await sign_in(admin, "th.admin")
    page = await admin.get("/staff/admin/blackouts")
    assert "SZ-FT" not in page.text.split('id="blackout-list"')[1]
    assert (await admin.get(futian_run)).status_code == 404
    assert (await admin.get(futian_run + "/progress")).status_code == 404


async def test_hot_dates_calendar_prefills_a_discouraged_blackout(
    admin: httpx.AsyncClient,
) -> None:
    page = await admin.get("/staff/admin/hot-dates", params={"lang": "en"})
    assert page.status_code == 200
    # The page's year starts today in the office's zone: a day either way of UTC.
    today = date.today()
    expected = hot_dates(today + timedelta(days=1), today + timedelta(days=364))
    assert expected, "a year always holds Feb 14 and May 20"
    for hot in expected:
        assert f'id="hot-{hot.day.isoformat()}"' in page.text
    first = expected[0]
    link = f"/staff/admin/blackouts?date={first.day.isoformat()}&amp;kind=discouraged"
    assert link in page.text
    assert translate("en", f"admin.hot.kind.{first.kinds[0]}") in html.unescape(page.text)
    form = await admin.get(link.replace("&amp;", "&"))
    assert '<option value="discouraged" selected>' in form.text
    assert f'id="f-start_date" name="start_date" type="date" value="{first.day}"' in form.text
    assert first.label_zh in form.text
    declared = await declare_by_pages(admin, _form_of(form.text))
    assert declared.status_code == 303, declared.text
    blackout = await one(Blackout.select().output(load_json=True))
    assert blackout["kind"] == "discouraged" and blackout["start_date"] == first.day
    assert blackout["reason"]["zh-Hans"].startswith(first.label_zh)


def _form_of(text: str) -> dict[str, Any]:
    """The pre-filled declaration form's values, as the browser would send them."""
    inputs = re.findall(
        r'<input id="f-[^"]+" name="([^"]+)" type="[^"]+"[^>]* value="([^"]*)"', text
    )
    form: dict[str, Any] = {name: html.unescape(value) for name, value in inputs}
    return form | {"scope": "offices", "offices": "GZ-TH", "kind": "discouraged"}


@pytest.mark.browser
async def test_progress_bar_moves_by_itself_in_a_browser(db: None, tmp_path: Path) -> None:
    """The run page polls its progress: no reload needed to see the run finish."""
    from playwright.async_api import async_playwright

    await make_office(code="GZ-TH", days_ahead=5)
    day = await _book_day("GZ-TH", 4)
    await make_staff("root", role="superadmin")
    declared = await blackouts.declare(
        blackouts.Declaration(
            kind="closed",
            start_date=day,
            end_date=day,
            offices=["GZ-TH"],
            reason={"zh-Hans": "疫情防控", "en": "Epidemic control"},
        ),
        now=datetime.now(UTC),
        actor=NamedActor("root"),
        scope=None,
        dry_run=False,
        settings=get_settings(),
    )
    run_id = declared["run"]["id"]
    async with running_server(tmp_path / "server.log") as server, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="en-US")
            await page.goto(f"{server.base}/staff/admin/runs/{run_id}")
            await page.fill("#f-username", "root")
            await page.fill("#f-password", PASSWORD)
            async with page.expect_navigation(url=f"**/staff/admin/runs/{run_id}"):
                await page.click("form[action='/staff/login'] button[type=submit]")
            assert await page.get_attribute("#run-bar", "value") == "0"
            # The server runs no jobs here: the test process executes the run.
            assert await reschedule.execute(
                run_id, "test", datetime.now(UTC), settings=get_settings()
            )
            await page.wait_for_selector('#run-bar[value="4"]', timeout=3000)
            assert await page.text_content("#sms-queued") == "8"
            assert await page.get_attribute("#run-progress", "data-status") == "done"
        finally:
            await browser.close()
