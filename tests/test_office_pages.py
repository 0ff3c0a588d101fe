"""Offices admin pages (issue 6): guarded like every admin page (anonymous to the
login page, clerks 403, another office 404, creating offices superadmin only);
bad input and a cap under bookings are explained in place and change nothing;
service suspensions declared and lifted from their page."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db.office_tables import ServiceSuspension
from scheduler.db.tables import Office, OfficeService, Slot
from scheduler.kernel.i18n import translate
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from tests.helpers import make_office, person
from tests.test_desk_pages import make_staff, post_form, says, sign_in
from tests.test_offices_admin import snapshot

HOURS = {str(d): [["09:00", "11:00"]] for d in range(7)}
PAGES = ["/staff/admin/offices", "/staff/admin/offices/GZ-TH", "/staff/admin/suspensions"]
POSTS = [
    "/staff/admin/offices",
    "/staff/admin/offices/GZ-TH",
    "/staff/admin/offices/GZ-TH/services/marriage",
    "/staff/admin/suspensions",
    "/staff/admin/suspensions/1/lift",
]


def service_form(cap: str = "4", **hours: str) -> dict[str, str]:
    form = {"slot_minutes": "30", "slot_cap": cap, "active": "on"}
    return form | {f"hours_{d}": hours.get(f"h{d}", "09:00-11:00") for d in range(7)}


@pytest.fixture
async def offices(db: None) -> None:
    await make_office(code="GZ-TH", days_ahead=5, slot_cap=4, weekly_hours=HOURS)
    await make_office(code="SZ-FT", days_ahead=5, slot_cap=4, weekly_hours=HOURS)


async def test_guards_of_every_page(client: httpx.AsyncClient, offices: None) -> None:
    for url in PAGES:
        resp = await client.get(url)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/staff/login")
    await make_staff("th.clerk", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    before = await snapshot()
    for url in PAGES:
        assert (await client.get(url)).status_code == 403, url
    for url in POSTS:
        assert (await post_form(client, url, service_form("9"))).status_code == 403, url
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await sign_in(client, "th.admin")
    assert (await client.get("/staff/admin/offices/SZ-FT")).status_code == 404
    foreign = await post_form(
        client, "/staff/admin/offices/SZ-FT/services/marriage", service_form("9")
    )
    assert foreign.status_code == 404
    create = await post_form(
        client, "/staff/admin/offices", {"code": "BJ-DC", "name_zh": "东城", "name_en": "D"}
    )
    assert create.status_code == 403
    listed = await client.get("/staff/admin/offices")
    assert 'id="office-GZ-TH"' in listed.text and "SZ-FT" not in listed.text
    assert 'id="create-form"' not in listed.text  # admins do not create offices
    after = await snapshot()
    # Signing in is audited; nothing else happened.
    audit_before = before.pop("audit_log")
    added = after.pop("audit_log")[len(audit_before) :]
    assert [a["action"] for a in added] == ["staff.create", "staff.login"]
    assert after == before


async def test_bad_input_and_caps_under_bookings_are_explained_and_change_nothing(
    client: httpx.AsyncClient, offices: None
) -> None:
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await sign_in(client, "th.admin")
    tomorrow = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=2)
    slot = (
        await Slot.select()
        .where((Slot.office.code == "GZ-TH") & (Slot.day >= tomorrow))
        .order_by(Slot.start_at)
        .first()
    )
    assert slot is not None
    for _ in range(3):
        await booking.hold(
            booking.BookingInput(
                slot_id=slot["id"],
                service="marriage",
                party_a=booking.PartyInput(**person()),
                party_b=booking.PartyInput(**person()),
            ),
            now=datetime.now(UTC),
            settings=get_settings(),
        )
    before = await snapshot()
    url = "/staff/admin/offices/GZ-TH/services/marriage"
    overlap = await post_form(client, url, service_form(h0="09:00-12:00, 11:00-13:00"))
    assert overlap.status_code == 422 and 'id="service-error"' in overlap.text
    assert says(overlap, "error.invalid-input.hours-overlap")
    assert 'value="09:00-12:00, 11:00-13:00"' in overlap.text  # what was typed stays
    garbled = await post_form(client, url, service_form(h2="nine to five"))
    assert garbled.status_code == 422 and says(garbled, "error.invalid-input.clock")
    negative = await post_form(client, url, service_form("-1"))
    assert negative.status_code == 422 and 'id="service-error"' in negative.text
    lowered = await post_form(client, url, service_form("2"))
    assert lowered.status_code == 409
    start = slot["start_at"].astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"{slot['day'].isoformat()} {start:%H:%M}: 3 &gt; 2" in lowered.text
    office_url = "/staff/admin/offices/GZ-TH"
    form = {
        "name_zh": "天河",
        "name_en": "Tianhe",
        "timezone": "Mars/Olympus",
        "day_cap": "100",
        "active": "on",
    }
    zone = await post_form(client, office_url, form)
    assert zone.status_code == 422 and 'id="office-error"' in zone.text
    assert says(zone, "error.invalid-input.timezone")
    day_cap = await post_form(
        client, office_url, form | {"timezone": "Asia/Shanghai", "day_cap": "1"}
    )
    assert day_cap.status_code == 409
    assert html.escape(f"{slot['day'].isoformat()}: 3 > 1") in day_cap.text
    assert await snapshot() == before

    saved = await post_form(client, url, service_form("6"))
    assert saved.status_code == 303 and saved.headers["location"].endswith("notice=saved")
    row = (
        await OfficeService.select()
        .where((OfficeService.service == "marriage") & (OfficeService.office.code == "GZ-TH"))
        .first()
    )
    assert row is not None and row["slot_cap"] == 6
    assert await Slot.exists().where((Slot.office == row["office"]) & (Slot.capacity == 6))
    renamed = await post_form(client, office_url, form | {"timezone": "Asia/Shanghai"})
    assert renamed.status_code == 303
    assert (await Office.select(Office.name_en).where(Office.code == "GZ-TH").first()) == {
        "name_en": "Tianhe"
    }


async def test_superadmin_creates_an_office_and_suspends_a_service_from_the_pages(
    client: httpx.AsyncClient, offices: None
) -> None:
    await make_staff("root", role="superadmin")
    await sign_in(client, "root")
    bad = await post_form(
        client,
        "/staff/admin/offices",
        {"code": "BJ-DC", "name_zh": "东城", "name_en": "Dongcheng", "timezone": "Nowhere/Land"},
    )
    assert bad.status_code == 422 and says(bad, "error.invalid-input.timezone")
    assert 'value="BJ-DC"' in bad.text
    made = await post_form(
        client,
        "/staff/admin/offices",
        {
            "code": "BJ-DC",
            "name_zh": "东城",
            "name_en": "Dongcheng",
            "timezone": "Asia/Shanghai",
            "active": "on",
        },
    )
    assert (
        made.status_code == 303
        and made.headers["location"] == "/staff/admin/offices/BJ-DC?notice=created"
    )
    page = await client.get(made.headers["location"])
    assert page.status_code == 200 and 'id="add-service"' in page.text

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    form = {
        "offices": "GZ-TH",
        "service": "marriage",
        "start_date": (today + timedelta(days=1)).isoformat(),
        "end_date": (today + timedelta(days=3)).isoformat(),
        "reason_zh": "疫情防控",
        "reason_en": "Epidemic control",
    }
    missing = await post_form(client, "/staff/admin/suspensions", form | {"reason_zh": ""})
    assert missing.status_code == 422 and 'id="suspend-error"' in missing.text
    assert await ServiceSuspension.count() == 0
    done = await post_form(client, "/staff/admin/suspensions", form)
    assert done.status_code == 303, done.text
    listed = await client.get(done.headers["location"])
    assert says(listed, "offices.notice.suspended", count=0)
    suspension = await ServiceSuspension.select().first()
    assert suspension is not None
    assert f'action="/staff/admin/suspensions/{suspension["id"]}/lift"' in listed.text
    lifted = await post_form(client, f"/staff/admin/suspensions/{suspension['id']}/lift")
    assert lifted.status_code == 303
    assert (
        translate("zh-Hans", "offices.suspensions.lifted")
        in (await client.get("/staff/admin/suspensions")).text
    )
