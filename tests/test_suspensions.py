"""Service suspensions (issue 6): new bookings refused with 409 service-suspended,
the offices list and availability say so, each booked partner is texted exactly
once, the manage page offers cancel or another date, lifting reopens; audited;
scoped like every admin action."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db.office_tables import ServiceSuspension
from scheduler.db.tables import AuditLog, OutboxMessage, Slot
from scheduler.kernel.i18n import translate
from tests.helpers import booking_body, make_office, staff_token

URL = "/api/v1/admin/suspensions"


def local_today() -> date:
    """Today in the offices' zone (Asia/Shanghai), not the test machine's."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


async def _book(client: httpx.AsyncClient, slot_id: int) -> dict[str, Any]:
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _days(client: httpx.AsyncClient, start: date, end: date) -> list[dict[str, Any]]:
    resp = await client.get(
        "/api/v1/offices/GZ-TH/availability",
        params={"service": "marriage", "from": start.isoformat(), "to": end.isoformat()},
    )
    assert resp.status_code == 200, resp.text
    days: list[dict[str, Any]] = resp.json()["days"]
    return days


def _body(start: date, end: date, offices: tuple[str, ...] = ("GZ-TH",)) -> dict[str, Any]:
    return {
        "offices": list(offices),
        "service": "marriage",
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "reason": {"zh-Hans": "疫情防控", "en": "Epidemic control"},
    }


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: None) -> dict[str, str]:
    await make_office(code="GZ-TH", days_ahead=8, services=("marriage", "divorce"))
    await make_office(code="SZ-FT", days_ahead=8)
    return await staff_token(client, "th.admin", role="admin", offices=("GZ-TH",))


async def test_suspension_refuses_bookings_texts_each_partner_once_and_lift_reopens(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    today = local_today()
    open_days = [
        d
        for d in await _days(client, today + timedelta(days=2), today + timedelta(days=8))
        if d["status"] == "open"
    ]
    day, later = open_days[0], open_days[-1]
    booked = [await _book(client, day["slots"][i]["id"]) for i in range(2)]
    outside = await _book(client, later["slots"][0]["id"])

    resp = await client.post(URL, json=_body(today, date.fromisoformat(day["date"])), headers=admin)
    assert resp.status_code == 201, resp.text
    suspension = resp.json()
    assert suspension["notified"] == 2 and suspension["offices"] == ["GZ-TH"]

    # Exactly one SMS per partner of each couple inside, none for the one outside.
    texts = await OutboxMessage.select().where(OutboxMessage.template == "service_suspended")
    assert len(texts) == 4
    refs = sorted(t["key"].split(":")[1] for t in texts)
    assert len(set(refs)) == 2
    for t in texts:
        assert "疫情防控" in t["body"] and "http" not in t["body"]
    assert outside["reference"] not in {t["body"] for t in texts}

    # New bookings are refused with the slug; other services and offices are not.
    refused = await client.post("/api/v1/appointments", json=booking_body(day["slots"][3]["id"]))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/service-suspended")
    divorce = (
        await Slot.select()
        .where((Slot.service == "divorce") & (Slot.day == date.fromisoformat(day["date"])))
        .first()
    )
    assert divorce is not None
    ok = await client.post(
        "/api/v1/appointments", json=booking_body(divorce["id"], service="divorce")
    )
    assert ok.status_code == 201, ok.text

    # The offices list says so; availability shows the days with the reason.
    offices = {o["code"]: o for o in (await client.get("/api/v1/offices")).json()}
    marriage = next(s for s in offices["GZ-TH"]["services"] if s["service"] == "marriage")
    assert marriage["suspended"] is True
    assert marriage["suspension"]["to"] == day["date"]
    assert not any(s["suspended"] for s in offices["SZ-FT"]["services"])
    shown = await _days(client, date.fromisoformat(day["date"]), date.fromisoformat(day["date"]))
    assert shown[0]["status"] == "blackout" and shown[0]["reason"] == "疫情防控"
    assert shown[0]["slots"] == []

    # The couple's manage page explains it and offers cancel and move.
    couple = booked[0]
    page = await client.get(
        f"/manage/{couple['reference']}", params={"token": couple["manage_token"]}
    )
    if page.status_code == 303:
        page = await client.get(page.headers["location"])
    assert page.status_code == 200
    assert translate("zh-Hans", "offices.manage.suspended", reason="疫情防控") in page.text
    assert f"/manage/{couple['reference']}/move" in page.text
    assert f"/manage/{couple['reference']}/cancel" in page.text

    # Lifting reopens; nobody is texted again.
    lifted = await client.delete(f"{URL}/{suspension['id']}", headers=admin)
    assert lifted.status_code == 200 and lifted.json()["lifted"] is True
    again = await client.post("/api/v1/appointments", json=booking_body(day["slots"][3]["id"]))
    assert again.status_code == 201, again.text
    assert await OutboxMessage.count().where(OutboxMessage.template == "service_suspended") == 4
    twice = await client.delete(f"{URL}/{suspension['id']}", headers=admin)
    assert twice.status_code == 409
    actions = [
        a["action"]
        for a in await AuditLog.select(AuditLog.action)
        .where(AuditLog.object_type == "service_suspension")
        .order_by(AuditLog.id)
    ]
    assert actions == ["service.suspend", "service.resume"]


async def test_bad_or_foreign_suspensions_change_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    today = local_today()
    cases = [
        (_body(today + timedelta(days=3), today + timedelta(days=2)), 422),
        (_body(today - timedelta(days=3), today), 422),
        (_body(today, today) | {"service": "wedding"}, 422),
        (_body(today, today) | {"reason": {"zh-Hans": ""}}, 422),
        (_body(today, today, ("XX-NO",)), 422),
        (_body(today, today, ("SZ-FT",)), 404),
        (_body(today, today, ("GZ-TH", "SZ-FT")), 404),
    ]
    for body, status in cases:
        resp = await client.post(URL, json=body, headers=admin)
        assert resp.status_code == status, (body, resp.text)
    assert await ServiceSuspension.count() == 0
    assert not await Slot.exists().where(Slot.blocked.eq(True))
    # A superadmin's suspension of another office: the admin cannot see or lift it.
    root = await staff_token(client, "root", role="superadmin", offices=())
    made = await client.post(URL, json=_body(today, today, ("SZ-FT",)), headers=root)
    assert made.status_code == 201
    assert (await client.get(URL, headers=admin)).json() == []
    foreign = await client.delete(f"{URL}/{made.json()['id']}", headers=admin)
    assert foreign.status_code == 404
    assert (await client.get(URL, headers=root)).json()[0]["lifted"] is False


async def test_lifting_its_blackout_from_the_blackouts_page_lifts_the_suspension(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    today = local_today()
    made = await client.post(URL, json=_body(today, today + timedelta(days=3)), headers=admin)
    assert made.status_code == 201, made.text
    row = await ServiceSuspension.select().first()
    assert row is not None
    lifted = await client.delete(f"/api/v1/admin/blackouts/{row['blackout']}", headers=admin)
    assert lifted.status_code == 200, lifted.text
    offices = {o["code"]: o for o in (await client.get("/api/v1/offices")).json()}
    marriage = next(s for s in offices["GZ-TH"]["services"] if s["service"] == "marriage")
    assert marriage["suspended"] is False and marriage["suspension"] is None
    assert (await client.get(URL, headers=admin)).json()[0]["lifted"] is True
    assert not await Slot.exists().where(Slot.blocked.eq(True))
