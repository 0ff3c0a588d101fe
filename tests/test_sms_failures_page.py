"""The clerk's page of SMS that did not reach a couple: scoped to the clerk's offices,
resend (one copy, audited) and "called the couple" (audited)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from scheduler.db.audit import entries
from scheduler.db.tables import OutboxMessage
from scheduler.kernel.clock import utcnow
from scheduler.kernel.i18n import translate
from scheduler.settings import get_settings
from scheduler.usecases.staff import accounts as staff
from tests.helpers import booking_body, make_office, open_slots

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2 with test-sized costs: the code paths are the same, the seconds are not."""
    monkeypatch.setattr(
        staff, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    staff._dummy_hash.cache_clear()
    yield
    staff._dummy_hash.cache_clear()


async def book(client: httpx.AsyncClient, office: str) -> str:
    slot = (await open_slots(client, office))[0]
    resp = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["reference"])


async def code_message(reference: str, party: str = "a") -> dict[str, Any]:
    rows = (
        await OutboxMessage.select().where(OutboxMessage.template == "code").output(load_json=True)
    )
    found = [
        r for r in rows if r["payload"]["reference"] == reference and r["key"].endswith(f":{party}")
    ]
    assert len(found) == 1
    return found[0]


async def fail(message_id: int, status: str = "failed", needs_call: bool = True) -> None:
    """What the dispatcher records for a permanent error (21211: not a mobile number)."""
    await OutboxMessage.update(
        {
            OutboxMessage.status: status,
            OutboxMessage.error_code: "21211",
            OutboxMessage.error_text: "The 'To' number is not a valid phone number.",
            OutboxMessage.status_at: utcnow(),
            OutboxMessage.needs_call: needs_call,
        }
    ).where(OutboxMessage.id == message_id)


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    await client.get("/staff/login")
    resp = await post_form(
        client, "/staff/login", {"username": username, "password": PASSWORD, "next": "/staff/sms"}
    )
    assert resp.status_code == 303, resp.text


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, str] | None = None
) -> httpx.Response:
    token = client.cookies.get("csrftoken") or ""
    return await client.post(url, data={**(data or {}), "_csrf_token": token})


def listed_ids(page: httpx.Response) -> set[int]:
    return {int(i) for i in re.findall(r'<tr id="sms-(\d+)">', page.text)}


@pytest.fixture
async def world(client: httpx.AsyncClient, db: None) -> dict[str, Any]:
    """Two offices, a booking in each whose party A's code SMS failed; a clerk of the first."""
    await make_office(code="GZ-TH", days_ahead=5)
    await make_office(code="SZ-FT", days_ahead=5)
    refs = {code: await book(client, code) for code in ("GZ-TH", "SZ-FT")}
    msgs = {code: await code_message(ref) for code, ref in refs.items()}
    for msg in msgs.values():
        await fail(msg["id"])
    now = datetime.now(UTC)
    await staff.create_staff(
        username="tianhe", password=PASSWORD, role="clerk", office_codes=["GZ-TH"], now=now
    )
    await staff.create_staff(
        username="root", password=PASSWORD, role="superadmin", office_codes=[], now=now
    )
    return {"refs": refs, "msgs": msgs}


async def test_clerk_sees_only_failures_of_own_offices(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    await sign_in(client, "tianhe")
    page = await client.get("/staff/sms")
    assert page.status_code == 200
    own, other = world["msgs"]["GZ-TH"], world["msgs"]["SZ-FT"]
    # Only the failed message of the clerk's office: not party B's pending one, not Futian's.
    assert listed_ids(page) == {own["id"]}
    assert world["refs"]["GZ-TH"] in page.text and world["refs"]["SZ-FT"] not in page.text
    assert "21211" in page.text and "not a valid phone number" in html.unescape(page.text)
    phone = own["to_phone"]
    assert phone not in page.text and f"{phone[:6]}****{phone[-4:]}" in page.text
    assert translate("zh-Hans", "staff.sms.needs_call") in page.text
    assert other["to_phone"] not in page.text


async def test_superadmin_sees_every_office(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    await sign_in(client, "root")
    page = await client.get("/staff/sms", params={"lang": "en"})
    assert listed_ids(page) == {m["id"] for m in world["msgs"].values()}
    assert "Text messages that did not arrive" in page.text


async def test_another_offices_message_is_not_found(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    await sign_in(client, "tianhe")
    other = world["msgs"]["SZ-FT"]
    before = await OutboxMessage.count()
    for action, data in (("resend", {"attempt": "1"}), ("called", {})):
        resp = await post_form(client, f"/staff/sms/{other['id']}/{action}", data)
        assert resp.status_code == 404, action
    assert (
        await post_form(client, "/staff/sms/999999/resend", {"attempt": "1"})
    ).status_code == 404
    assert await OutboxMessage.count() == before
    assert await entries("outbox_message", other["id"]) == []
    row = await OutboxMessage.select().where(OutboxMessage.id == other["id"]).first()
    assert row["needs_call"] is True


async def test_resend_queues_exactly_one_copy_and_audits(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    await sign_in(client, "tianhe")
    own = world["msgs"]["GZ-TH"]
    before = await OutboxMessage.count()
    resp = await post_form(client, f"/staff/sms/{own['id']}/resend", {"attempt": "1"})
    assert resp.status_code == 303 and resp.headers["location"] == "/staff/sms?notice=resent"
    assert await OutboxMessage.count() == before + 1
    copy = (
        await OutboxMessage.select()
        .where(OutboxMessage.key == own["key"] + ":resend:1")
        .output(load_json=True)
        .first()
    )
    assert copy["status"] == "pending" and copy["urgent"] is True
    assert copy["body"] == own["body"] and copy["to_phone"] == own["to_phone"]
    assert copy["payload"] == own["payload"] and copy["appointment_id"] == own["appointment_id"]
    assert copy["due_at"] <= datetime.now(UTC)
    old = await OutboxMessage.select().where(OutboxMessage.id == own["id"]).first()
    assert old["needs_call"] is False and old["status"] == "failed"
    [audit] = await entries("outbox_message", own["id"])
    assert audit["action"] == "sms.resend" and audit["actor_name"] == "tianhe"
    assert audit["office_id"] is not None and audit["ip"]
    assert audit["before"] == {"status": "failed", "needs_call": True}
    assert audit["after"]["resend_id"] == copy["id"]
    # A double-clicked button (same attempt number) sends nothing more.
    again = await post_form(client, f"/staff/sms/{own['id']}/resend", {"attempt": "1"})
    assert again.headers["location"] == "/staff/sms?notice=already-resent"
    assert await OutboxMessage.count() == before + 1
    assert len(await entries("outbox_message", own["id"])) == 1
    # The page now offers the second resend, numbered from the original.
    page = await client.get("/staff/sms")
    assert 'name="attempt" value="2"' in page.text
    assert translate("zh-Hans", "staff.sms.resent_times", count=1) in page.text


async def test_called_the_couple_clears_the_flag(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    await sign_in(client, "tianhe")
    own = world["msgs"]["GZ-TH"]
    resp = await post_form(client, f"/staff/sms/{own['id']}/called")
    assert resp.status_code == 303 and resp.headers["location"] == "/staff/sms?notice=called"
    row = await OutboxMessage.select().where(OutboxMessage.id == own["id"]).first()
    assert row["needs_call"] is False
    [audit] = await entries("outbox_message", own["id"])
    assert audit["action"] == "sms.called" and audit["after"] == {"needs_call": False}
    # Pressed again: nothing changes, nothing more is recorded.
    await post_form(client, f"/staff/sms/{own['id']}/called")
    assert len(await entries("outbox_message", own["id"])) == 1
    page = await client.get("/staff/sms")
    assert f'action="/staff/sms/{own["id"]}/called"' not in page.text


async def test_actions_need_the_csrf_token(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    await sign_in(client, "tianhe")
    own = world["msgs"]["GZ-TH"]
    before = await OutboxMessage.count()
    resp = await client.post(f"/staff/sms/{own['id']}/resend", data={"attempt": "1"})
    assert resp.status_code == 403
    assert await OutboxMessage.count() == before
    assert await entries("outbox_message", own["id"]) == []


async def test_which_messages_are_listed(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    """Failed, dead and undelivered of the last week; older ones only while a call is due."""
    ref = world["refs"]["GZ-TH"]
    b = await code_message(ref, "b")
    root = (
        await staff.login(
            "root", PASSWORD, kind="bearer", ip=None, now=utcnow(), settings=get_settings()
        )
    ).member
    now = utcnow()
    for status in ("dead", "undelivered", "sent", "delivered"):
        await fail(b["id"], status=status, needs_call=False)
        listed = {
            m["id"]
            for m in await staff.sms_failures(
                root, now=now, default_tz=get_settings().default_timezone
            )
        }
        assert (b["id"] in listed) == (status in ("dead", "undelivered")), status
    a = world["msgs"]["GZ-TH"]
    week_later = now + timedelta(days=8)
    listed = {
        m["id"]
        for m in await staff.sms_failures(
            root, now=week_later, default_tz=get_settings().default_timezone
        )
    }
    assert a["id"] in listed  # still needs a call
    await fail(a["id"], needs_call=False)
    listed = {
        m["id"]
        for m in await staff.sms_failures(
            root, now=week_later, default_tz=get_settings().default_timezone
        )
    }
    assert a["id"] not in listed
    await fail(b["id"], status="sent", needs_call=False)
    with pytest.raises(Exception, match="not-pending"):
        await staff.resend_sms(root, b["id"], 1, ip=None, now=now)
