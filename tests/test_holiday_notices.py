"""The working calendar from the State Council's holiday notices (issue 12, items 4-5):
every day of the 2025 and 2026 blocks closed and every make-up day open, for every
demo office and service; loading a year's notice (preview, load, couples moved and
texted once); bad notices refused; the missing-year warning in /health/ready and on
admin pages."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.settings import get_settings
from tests.helpers import booking_body, make_office, sms_codes, staff_token

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _span(first: str, last: str) -> list[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


# Written out from the notices' text (国办发明电〔2024〕12号 of 2024-11-12; the 2026
# notice of 2025-11-04), not read back from config/holidays/.
CLOSED = [
    *_span("2025-01-01", "2025-01-01"),
    *_span("2025-01-28", "2025-02-04"),
    *_span("2025-04-04", "2025-04-06"),
    *_span("2025-05-01", "2025-05-05"),
    *_span("2025-05-31", "2025-06-02"),
    *_span("2025-10-01", "2025-10-08"),
    *_span("2026-01-01", "2026-01-03"),
    *_span("2026-02-15", "2026-02-23"),
    *_span("2026-04-04", "2026-04-06"),
    *_span("2026-05-01", "2026-05-05"),
    *_span("2026-06-19", "2026-06-21"),
    *_span("2026-09-25", "2026-09-27"),
    *_span("2026-10-01", "2026-10-07"),
]
MAKEUP = [
    date.fromisoformat(d)
    for d in (
        "2025-01-26",
        "2025-02-08",
        "2025-04-27",
        "2025-09-28",
        "2025-10-11",
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    )
]
# The Saturdays the issue found open for Saturday services although inside a block.
ISSUE_SATURDAYS = [
    date.fromisoformat(d)
    for d in (
        "2025-02-01",
        "2025-04-05",
        "2025-05-03",
        "2025-10-04",
        "2026-01-03",
        "2026-02-21",
        "2026-04-04",
        "2026-06-20",
        "2026-09-26",
    )
]
# Ordinary Saturdays next to blocks: a Saturday service is open there (the check can fail).
PLAIN_SATURDAYS = [date(2025, 10, 18), date(2026, 2, 7), date(2026, 10, 17)]
WINDOW = 21  # days generated per run below: covers each block with its make-up days


async def _generate_around(days: list[date]) -> list[tuple[date, date]]:
    """Run the slot job at moments that put every listed day inside its window, as
    the daily job did then (one run per group of days). Returns the windows."""
    from scheduler.db.tables import Office
    from scheduler.usecases.calendar.slots import generate_slots

    await Office.update({Office.booking_days_ahead: WINDOW}).where(Office.id > 0)
    windows: list[tuple[date, date]] = []
    for day in sorted(days):
        if windows and day <= windows[-1][1]:
            continue
        start = day - timedelta(days=1)
        # 09:00 in Shanghai: the day's booking has opened (08:30).
        await generate_slots(datetime(start.year, start.month, start.day, 1, 0, tzinfo=UTC))
        windows.append((start, start + timedelta(days=WINDOW)))
    return windows


async def test_every_notice_day_is_right_for_every_demo_office_and_service(db: None) -> None:
    from scheduler.db.tables import Office, OfficeService, Slot
    from scheduler.settings import get_settings
    from scheduler.usecases.offices.seed import load_offices

    assert set(ISSUE_SATURDAYS) <= set(CLOSED)
    await load_offices(Path(get_settings().demo_offices_file))
    checked = CLOSED + MAKEUP + PLAIN_SATURDAYS
    windows = await _generate_around(checked)

    codes = {o["id"]: o["code"] for o in await Office.select(Office.id, Office.code)}
    services = await OfficeService.select().output(load_json=True)
    assert {codes[s["office"]] for s in services} == {"GZ-TH", "GZ-YX", "SZ-FT", "SZ-NS", "DG-SL"}
    rows = await Slot.select(Slot.office, Slot.service, Slot.day).where(
        Slot.day.is_in(sorted(set(checked)))
    )
    open_days = {(r["office"], r["service"], r["day"]) for r in rows}
    # Every window was really generated: GZ-TH marriage has slots on its last workday.
    generated = {r["day"] for r in await Slot.select(Slot.day).where(Slot.day >= date(2025, 1, 1))}
    for _, last in windows:
        assert any(last - timedelta(days=k) in generated for k in range(5)), last

    wrong = []
    for svc in services:
        hours = svc["weekly_hours"]
        key = (svc["office"], svc["service"])
        for day in CLOSED:
            if (*key, day) in open_days:
                wrong.append((codes[key[0]], key[1], day.isoformat(), "open, should be closed"))
        for day in MAKEUP + PLAIN_SATURDAYS:
            # A make-up day runs the weekday (Monday) hours; a service with none (the
            # Saturday ceremony) keeps its own hours of that weekday.
            weekday = "0" if day in MAKEUP and hours.get("0") else str(day.weekday())
            expect_open = bool(hours.get(weekday))
            if ((*key, day) in open_days) != expect_open:
                state = "open" if expect_open else "closed"
                wrong.append((codes[key[0]], key[1], day.isoformat(), f"should be {state}"))
    assert not wrong, wrong
    ceremony = next(s for s in services if s["service"] == "ceremony")
    # The Saturday ceremony is open on a make-up Saturday and on plain Saturdays.
    for day in [date(2025, 2, 8), date(2025, 10, 11), *PLAIN_SATURDAYS]:
        assert (ceremony["office"], "ceremony", day) in open_days, day
    for day in ISSUE_SATURDAYS:
        assert (ceremony["office"], "ceremony", day) not in open_days, day


# --- loading a notice --------------------------------------------------------------------

EVERY_DAY_ONE_HOUR = {str(d): [["09:00", "10:00"]] for d in range(7)}


def _test_notice(first_closed: date, year: int) -> dict[str, Any]:
    """A valid notice for ``year`` whose New Year block runs to ``first_closed``; the
    other blocks are the statutory days (merged where they touch)."""
    from scheduler.usecases.calendar.holidays import statutory_rules

    spans = statutory_rules().by_holiday(year)
    spans["new_year"] = _span(f"{year}-01-01", first_closed.isoformat())
    blocks: list[dict[str, Any]] = []
    for key, ds in sorted(spans.items(), key=lambda kv: min(kv[1])):
        first, last = min(ds), max(ds)
        if blocks and first <= date.fromisoformat(blocks[-1]["to"]) + timedelta(days=1):
            blocks[-1]["holidays"].append(key)
            blocks[-1]["to"] = max(last, date.fromisoformat(blocks[-1]["to"])).isoformat()
            continue
        blocks.append(
            {"holidays": [key], "from": first.isoformat(), "to": last.isoformat(), "makeup": []}
        )
    return {
        "year": year,
        "title": f"国务院办公厅关于{year}年部分节假日安排的通知",
        "document_number": f"国办发明电〔{year - 1}〕99号",
        "published_on": (datetime.now(SHANGHAI).date() - timedelta(days=1)).isoformat(),
        "url": "https://www.gov.cn/zhengce/content/example.htm",
        "blocks": blocks,
    }


async def _slots_on(day: date) -> list[dict[str, Any]]:
    from scheduler.db.tables import Slot

    return list(await Slot.select().where(Slot.day == day).order_by(Slot.start_at))


async def _confirmed(client: httpx.AsyncClient, slot_id: int) -> dict[str, Any]:
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert resp.status_code == 201, resp.text
    held = resp.json()
    codes = await sms_codes(held["reference"])
    for role in ("a", "b"):
        ok = await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
        assert ok.status_code == 200, ok.text
    return held


async def test_loading_a_notice_moves_the_couples_of_newly_closed_days(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.db.holiday_tables import HolidayNotice
    from scheduler.db.tables import Appointment, AuditLog, OutboxMessage, Party
    from scheduler.usecases.offices import reschedule

    await make_office(weekly_hours=EVERY_DAY_ONE_HOUR, days_ahead=400, slot_cap=3)
    today = datetime.now(SHANGHAI).date()
    year = today.year + 1
    # The first day after 1 January of next year that is open today: the notice closes it.
    open_days = [d for d in _span(f"{year}-01-02", f"{year}-01-14") if await _slots_on(d)]
    target = open_days[0]
    root = await staff_token(client, "root", role="superadmin", offices=())
    admin = await staff_token(client, "th.admin", role="admin")
    booked = [await _confirmed(client, s["id"]) for s in (await _slots_on(target))[:2]]
    later = target + timedelta(days=20)
    untouched = await _confirmed(client, (await _slots_on(later))[0]["id"])
    phones = {
        p["phone"]
        for p in await Party.select(Party.phone).where(
            Party.appointment.reference.is_in([b["reference"] for b in booked])
        )
    }
    assert len(phones) == 4

    notice = _test_notice(target, year)
    resp = await client.post("/api/v1/admin/holiday-notices/preview", json=notice, headers=admin)
    assert resp.status_code == 403  # an admin reads, only a superadmin loads
    preview = await client.post("/api/v1/admin/holiday-notices/preview", json=notice, headers=root)
    assert preview.status_code == 200, preview.text
    seen = preview.json()
    assert seen["affected"] == 2
    assert any(c["from"] <= target.isoformat() <= c["to"] for c in seen["closing"])

    # Never one call: without the preview's count (or with another) nothing happens.
    for body in ({"notice": notice}, {"notice": notice, "confirm_affected": 1}):
        stale = await client.post("/api/v1/admin/holiday-notices", json=body, headers=root)
        assert stale.status_code == 409, stale.text
        assert stale.headers["content-type"].startswith("application/problem+json")
        assert stale.json()["type"].endswith("/holiday-preview-stale")
    assert await HolidayNotice.count() == 0

    loaded = await client.post(
        "/api/v1/admin/holiday-notices",
        json={"notice": notice, "confirm_affected": 2},
        headers=root,
    )
    assert loaded.status_code == 201, loaded.text
    runs = [b["run"] for b in loaded.json()["blackouts"] if b["run"]]
    assert len(runs) == 1
    # From now on the day is closed: no booking lands there, even before the run.
    refused = await client.post(
        "/api/v1/appointments", json=booking_body((await _slots_on(target))[0]["id"])
    )
    assert refused.status_code == 409, refused.text

    assert await reschedule.execute(
        runs[0], "test-worker", datetime.now(UTC), settings=get_settings()
    )
    rows = await Appointment.select(
        Appointment.reference, Appointment.status, Appointment.slot.day
    ).where(Appointment.reference.is_in([b["reference"] for b in [*booked, untouched]]))
    by_ref = {r["reference"]: r for r in rows}
    for b in booked:
        assert by_ref[b["reference"]]["status"] == "confirmed"
        assert by_ref[b["reference"]]["slot.day"] != target
    assert by_ref[untouched["reference"]]["slot.day"] == later

    texts = await OutboxMessage.select(OutboxMessage.to_phone, OutboxMessage.template).where(
        OutboxMessage.template.is_in(["rescheduled", "needs_rebooking"])
    )
    assert Counter(t["to_phone"] for t in texts) == dict.fromkeys(phones, 1)
    # Running the run again (a restarted worker) texts nobody twice.
    await reschedule.execute(runs[0], "test-worker-2", datetime.now(UTC), settings=get_settings())
    assert await OutboxMessage.count().where(
        OutboxMessage.template.is_in(["rescheduled", "needs_rebooking"])
    ) == len(texts)

    overview = (await client.get("/api/v1/admin/holiday-notices", headers=admin)).json()
    mine = next(n for n in overview["notices"] if n["year"] == year)
    assert (mine["source"], mine["version"], mine["loaded_by"]) == ("loaded", 1, "root")
    assert year not in [m["year"] for m in overview["missing"]]
    audit = await AuditLog.select().where(AuditLog.action == "holiday_notice.load")
    assert len(audit) == 1 and audit[0]["actor_name"] == "root"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"year": "next"}, "year", "holiday-year-format"),
        ({"year": 2019}, "year", "holiday-year-range"),
        ({"published_on": "2099-01-01"}, "published_on", "holiday-published-range"),
        ({"url": "javascript:alert(1)"}, "url", "holiday-url-format"),
        ({"title": ""}, "title", "required"),
        ({"blocks": []}, "blocks", "holiday-blocks-required"),
        ({"blocks": "x"}, "blocks", "holiday-blocks-required"),
    ],
)
async def test_a_bad_notice_is_422_and_stores_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, reason: str
) -> None:
    from scheduler.db.holiday_tables import HolidayNotice

    root = await staff_token(client, "root", role="superadmin", offices=())
    year = datetime.now(SHANGHAI).date().year + 1
    notice = _test_notice(date(year, 1, 2), year) | change
    for path, body in (
        ("/preview", notice),
        ("", {"notice": notice, "confirm_affected": 0}),
    ):
        resp = await client.post(
            f"/api/v1/admin/holiday-notices{path}",
            json=body,
            headers=root | {"Accept-Language": "en"},
        )
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert problem["type"].endswith("/invalid-input")
        assert problem["field"] == field, problem
        assert problem["detail"] and "error." not in problem["detail"]
    assert await HolidayNotice.count() == 0
    _ = reason  # the reason is the message's key; the detail above is its English text


@pytest.mark.parametrize(
    ("mutate", "field_start"),
    [
        # A make-up "working day" on a Wednesday is a typo.
        (lambda b: b[0].update(makeup=[_first_weekday(b[0]["to"])]), "blocks[0].makeup"),
        # The Spring Festival block moved a month: its statutory days fall outside.
        (
            lambda b: b[1].update(
                **{"from": _shift(b[1]["from"], 31), "to": _shift(b[1]["to"], 31)}
            ),
            "blocks",
        ),
        # Two blocks on the same days.
        (lambda b: b[2].update(**{"from": b[1]["from"], "to": b[1]["to"]}), "blocks"),
        # A block longer than two weeks.
        (lambda b: b[0].update(to=_shift(b[0]["from"], 20)), "blocks[0].to"),
    ],
)
async def test_notice_checks_catch_typos(
    client: httpx.AsyncClient, mutate: Any, field_start: str
) -> None:
    root = await staff_token(client, "root", role="superadmin", offices=())
    year = datetime.now(SHANGHAI).date().year + 1
    notice = _test_notice(date(year, 1, 2), year)
    mutate(notice["blocks"])
    resp = await client.post("/api/v1/admin/holiday-notices/preview", json=notice, headers=root)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"].startswith(field_start), resp.json()


def _shift(iso: str, days: int) -> str:
    return (date.fromisoformat(iso) + timedelta(days=days)).isoformat()


def _first_weekday(iso: str) -> str:
    day = date.fromisoformat(iso) + timedelta(days=1)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return day.isoformat()


async def test_anonymous_and_clerks_cannot_load(client: httpx.AsyncClient) -> None:
    await make_office(weekly_hours={"0": [["09:00", "09:30"]]}, days_ahead=3)
    clerk = await staff_token(client, "th.clerk")
    assert (await client.post("/api/v1/admin/holiday-notices/preview", json={})).status_code == 401
    resp = await client.post("/api/v1/admin/holiday-notices/preview", json={}, headers=clerk)
    assert resp.status_code == 403
    assert (await client.get("/api/v1/admin/holiday-notices", headers=clerk)).status_code == 403


# --- the missing-year warning --------------------------------------------------------------


async def test_missing_year_warning_in_ready_and_on_admin_pages(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.usecases.calendar.holidays import shipped_notices
    from tests.test_desk_pages import make_staff, post_form

    await make_office(weekly_hours={"0": [["09:00", "09:30"]]}, days_ahead=400)
    today = datetime.now(SHANGHAI).date()
    reach = today + timedelta(days=401)
    missing = [y for y in range(today.year, reach.year + 1) if y not in shipped_notices()]
    assert missing  # 400 days always reach a year with no shipped notice here

    ready = await client.get("/health/ready")
    assert ready.status_code == 200  # a warning, not an outage
    check = ready.json()["checks"]["holidays"]
    assert check["ok"] is True
    for year in missing:
        assert f"warning: no State Council holiday notice for {year}" in check["detail"]
    assert "GZ-TH" in check["detail"] and "statutory holidays only" in check["detail"]

    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await make_staff("th.clerk", role="clerk", offices=("GZ-TH",))
    for username, warned in (("th.admin", True), ("th.clerk", False)):
        client.cookies.clear()
        await client.get("/staff/login")
        resp = await post_form(
            client,
            "/staff/login",
            {"username": username, "password": "desk-pages-long-password", "next": "/staff/"},
        )
        assert resp.status_code == 303, resp.text
        page = await client.get("/staff/?lang=en")
        assert ('id="holiday-warning"' in page.text) is warned
        if warned:
            assert f"No State Council holiday notice is loaded for {missing[0]}" in page.text
    client.cookies.clear()

    # Loading the missing years' notices clears the warning at once.
    root = await staff_token(client, "root", role="superadmin", offices=())
    for year in missing:
        notice = _test_notice(date(year, 1, 1), year)
        body = {"notice": notice, "confirm_affected": 0}
        resp = await client.post("/api/v1/admin/holiday-notices", json=body, headers=root)
        assert resp.status_code == 201, resp.text
    check = (await client.get("/health/ready")).json()["checks"]["holidays"]
    assert "warning" not in check["detail"], check


async def test_availability_says_which_holiday_closes_a_day(client: httpx.AsyncClient) -> None:
    """The month view's data: a day of a block is closed for a service open every day
    of the week, and says which holiday closes it, in the request's language."""
    from scheduler.usecases.calendar.holidays import current

    await make_office(weekly_hours=EVERY_DAY_ONE_HOUR, days_ahead=400)
    calendar = await current()
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    day = next(
        tomorrow + timedelta(days=i)
        for i in range(400)
        if calendar.kind(tomorrow + timedelta(days=i)) == "holiday"
    )
    english = {
        "new_year": "New Year's Day",
        "spring_festival": "Spring Festival",
        "qingming": "Qingming Festival",
        "labour_day": "Labour Day",
        "dragon_boat": "Dragon Boat Festival",
        "mid_autumn": "Mid-Autumn Festival",
        "national_day": "National Day",
    }
    expected = " and ".join(english[k] for k in calendar.holiday_names(day)) + " holiday"
    resp = await client.get(
        "/api/v1/offices/GZ-TH/availability",
        params={"service": "marriage", "from": day.isoformat(), "to": day.isoformat()},
        headers={"Accept-Language": "en"},
    )
    assert resp.status_code == 200, resp.text
    found = resp.json()["days"][0]
    assert found["status"] == "closed" and found["slots"] == []
    assert found["reason"] == expected, found
    zh = await client.get(
        "/api/v1/offices/GZ-TH/availability",
        params={"service": "marriage", "from": day.isoformat(), "to": day.isoformat()},
        headers={"Accept-Language": "zh-TW"},
    )
    assert zh.json()["days"][0]["reason"].endswith("放假")
    ordinary = day - timedelta(days=1)
    while calendar.kind(ordinary) == "holiday":
        ordinary -= timedelta(days=1)
    if ordinary >= tomorrow:
        resp = await client.get(
            "/api/v1/offices/GZ-TH/availability",
            params={
                "service": "marriage",
                "from": ordinary.isoformat(),
                "to": ordinary.isoformat(),
            },
        )
        assert resp.json()["days"][0]["status"] == "open"


# --- the page's two steps, without a browser (tests/test_holidays_browser.py walks it) ---


def _form(notice: dict[str, Any]) -> dict[str, str]:
    form = {k: str(notice[k]) for k in ("year", "title", "document_number", "published_on", "url")}
    for block in notice["blocks"]:
        for key in block["holidays"]:
            form[f"{key}_from"], form[f"{key}_to"] = block["from"], block["to"]
    return form


async def test_holiday_page_refuses_bad_forms_and_unconfirmed_loads(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.db.holiday_tables import HolidayNotice
    from tests.test_desk_pages import make_staff, post_form, sign_in

    await make_office(weekly_hours={"0": [["09:00", "09:30"]]}, days_ahead=3)
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await make_staff("root", role="superadmin")
    year = datetime.now(SHANGHAI).date().year + 1
    form = _form(_test_notice(date(year, 1, 1), year))

    await sign_in(client, "th.admin")
    page = await client.get("/staff/admin/holidays?lang=en")
    assert page.status_code == 200 and 'id="readonly"' in page.text
    assert 'id="load-form"' not in page.text
    assert (await post_form(client, "/staff/admin/holidays/preview", form)).status_code == 403

    client.cookies.clear()
    await sign_in(client, "root")
    await client.get("/staff/admin/holidays?lang=en")
    bad = await post_form(client, "/staff/admin/holidays/preview", form | {"year": "20x7"})
    assert bad.status_code == 422
    assert 'id="holiday-error"' in bad.text and "whole number" in bad.text
    assert 'value="20x7"' in bad.text  # what was typed is kept
    shifted = form | {
        "spring_festival_from": f"{year}-03-01",
        "spring_festival_to": f"{year}-03-04",
    }
    bad = await post_form(client, "/staff/admin/holidays/preview", shifted)
    assert bad.status_code == 422 and "outside its block" in bad.text

    preview = await post_form(client, "/staff/admin/holidays/preview", form)
    assert preview.status_code == 200 and 'id="confirm-form"' in preview.text
    notice_json = _hidden(preview.text, "notice")
    unticked = await post_form(
        client, "/staff/admin/holidays/load", {"notice": notice_json, "confirm_affected": "0"}
    )
    assert unticked.status_code == 422 and 'id="holiday-error"' in unticked.text
    assert await HolidayNotice.count() == 0
    loaded = await post_form(
        client,
        "/staff/admin/holidays/load",
        {"notice": notice_json, "confirm_affected": "0", "confirm": "on"},
    )
    assert loaded.status_code == 303, loaded.text
    assert loaded.headers["location"].endswith("/staff/admin/holidays?notice=loaded")
    assert await HolidayNotice.count() == 1


def _hidden(page: str, name: str) -> str:
    import html
    import re

    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return html.unescape(found.group(1))
