"""The couple's own access over the API (issue 14, items 5, 6, 7 and 9): every
field error at once, the hold released when codes lock, codes texted again
(limited per partner), a partner confirming with their own phone, and a lost
manage code recovered by SMS. A wrong phone or code answers exactly as an
unknown reference."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import booking_body, make_office, open_slots, person

WRONG = "000000"


async def _book(client: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    slot_id = (await open_slots(client))[0]["id"]
    resp = await client.post("/api/v1/appointments", json=booking_body(slot_id, **kw))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def latest_code(phone: str, template: str = "code") -> str:
    """The last code texted to ``phone`` with ``template`` (what that phone shows now)."""
    from scheduler.db.tables import OutboxMessage

    rows = (
        await OutboxMessage.select(OutboxMessage.payload)
        .where((OutboxMessage.to_phone == phone) & (OutboxMessage.template == template))
        .order_by(OutboxMessage.id, ascending=False)
        .output(load_json=True)
    )
    assert rows, (phone, template)
    return str(rows[0]["payload"]["code"])


async def texts_to(phone: str, template: str) -> list[str]:
    from scheduler.db.tables import OutboxMessage

    rows = await OutboxMessage.select(OutboxMessage.body).where(
        (OutboxMessage.to_phone == phone) & (OutboxMessage.template == template)
    )
    return [r["body"] for r in rows]


def _problem(resp: httpx.Response) -> dict[str, Any]:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    body = dict(resp.json())
    body.pop("instance", None)  # the path differs, the answer does not
    return body


async def test_every_invalid_field_is_named_at_once(client: httpx.AsyncClient) -> None:
    await make_office()
    slot_id = (await open_slots(client))[0]["id"]
    bad = {"name": " ", "id_type": "mainland_id", "id_number": "123", "phone": "123"}
    body = booking_body(slot_id, a=bad, b=person() | {"phone": "010-1234"})
    resp = await client.post("/api/v1/appointments", json=body, headers={"Accept-Language": "en"})
    assert resp.status_code == 422
    problem = _problem(resp)
    assert problem["type"].endswith("/invalid-input")
    fields = [e["key"] for e in problem["errors"]]
    assert fields == ["party_a.name", "party_a.id_number", "party_a.phone", "party_b.phone"]
    assert all(e["message"] and "error." not in e["message"] for e in problem["errors"])
    assert problem["field"] == "party_a.name"


async def test_locked_codes_release_the_hold_and_the_ids(client: httpx.AsyncClient) -> None:
    await make_office(slot_cap=1)
    a, b = person(), person()
    held = await _book(client, a=a, b=b)
    url = f"/api/v1/appointments/{held['reference']}/confirm"
    for left in (4, 3, 2, 1):
        resp = await client.post(url, json={"party": "a", "code": WRONG})
        assert resp.status_code == 422 and str(left) in resp.json()["detail"], resp.text
    resp = await client.post(url, json={"party": "a", "code": WRONG})
    assert resp.status_code == 429 and resp.json()["type"].endswith("/too-many-attempts")
    view = await client.get(
        f"/api/v1/appointments/{held['reference']}",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert view.json()["status"] == "expired"
    # The same two people book again at once: the seat and both ID claims are free.
    again = await _book(client, a=a, b=b)
    assert again["reference"] != held["reference"]


async def test_resend_is_limited_per_partner(client: httpx.AsyncClient) -> None:
    await make_office()
    a, b = person(), person()
    held = await _book(client, a=a, b=b)
    ref, token = held["reference"], {"X-Manage-Token": held["manage_token"]}
    first = await latest_code(a["phone"])
    url = f"/api/v1/appointments/{ref}/codes/resend"
    for left in (2, 1, 0):
        resp = await client.post(url, json={"party": "a"}, headers=token)
        assert resp.status_code == 200, resp.text
        assert resp.json()["a"] == {"attempts_left": 5, "resends_left": left}
        assert resp.json()["b"]["resends_left"] == 3  # counted per partner
    resp = await client.post(url, json={"party": "a"}, headers=token)
    assert resp.status_code == 429 and resp.json()["type"].endswith("/rate-limited")
    assert len(await texts_to(a["phone"], "code")) == 4
    # Only the newest code opens; the first was replaced.
    newest = await latest_code(a["phone"])
    confirm = f"/api/v1/appointments/{ref}/confirm"
    if newest != first:
        stale = await client.post(confirm, json={"party": "a", "code": first})
        assert stale.status_code == 422
    ok = await client.post(confirm, json={"party": "a", "code": newest})
    assert ok.status_code == 200, ok.text
    # Without the manage token: not found, nothing sent.
    resp = await client.post(url, json={"party": "b"})
    assert resp.status_code == 404
    assert len(await texts_to(b["phone"], "code")) == 1


async def test_own_phone_confirm_answers_like_an_unknown_reference(
    client: httpx.AsyncClient,
) -> None:
    await make_office()
    a, b = person(), person()
    held = await _book(client, a=a, b=b)
    ref = held["reference"]
    code_b = await latest_code(b["phone"])

    async def by_phone(reference: str, phone: str, code: str) -> httpx.Response:
        return await client.post(
            f"/api/v1/appointments/{reference}/confirm-by-phone",
            json={"phone": phone, "code": code},
        )

    unknown = await by_phone("GZTH-0000-0000", b["phone"], code_b)
    assert unknown.status_code == 404
    answers = [
        await by_phone(ref, person()["phone"], code_b),  # not a partner's phone
        await by_phone(ref, b["phone"], WRONG),  # wrong code
        await by_phone(ref, "not a phone", code_b),
        await by_phone(ref, a["phone"], code_b),  # the other partner's code
    ]
    for resp in answers:
        assert resp.status_code == 404
        assert _problem(resp) == _problem(unknown)
    # B confirms with B's own number, typed the national way.
    ok = await by_phone(ref, b["phone"].removeprefix("+86"), code_b)
    assert ok.status_code == 200, ok.text
    parties = {p["role"]: p["confirmed"] for p in ok.json()["parties"]}
    assert parties == {"a": False, "b": True}
    # Confirmed already: the right code repeats the answer, a wrong one is unknown.
    assert (await by_phone(ref, b["phone"], code_b)).status_code == 200
    assert _problem(await by_phone(ref, b["phone"], WRONG)) == _problem(unknown)
    # Every code checked counted (issue 13.6: spent before the comparison): against
    # A one wrong, against B one wrong, the right one, its retry and a wrong one.
    from scheduler.db.tables import Party

    attempts = {r["role"]: r["code_attempts"] for r in await Party.select()}
    assert attempts == {"a": 1, "b": 4}


async def test_own_phone_resend_never_tells(client: httpx.AsyncClient) -> None:
    await make_office()
    a, b = person(), person()
    held = await _book(client, a=a, b=b)
    url = f"/api/v1/appointments/{held['reference']}/codes/resend-to-phone"
    stranger = person()["phone"]
    answers = [
        await client.post(url, json={"phone": b["phone"]}),
        await client.post(url, json={"phone": stranger}),
        await client.post(
            "/api/v1/appointments/GZTH-0000-0000/codes/resend-to-phone",
            json={"phone": b["phone"]},
        ),
    ]
    assert {r.status_code for r in answers} == {202}
    assert len({r.text for r in answers}) == 1
    assert len(await texts_to(b["phone"], "code")) == 2
    assert await texts_to(stranger, "code") == []


async def test_lost_manage_code_is_recovered_by_sms(client: httpx.AsyncClient) -> None:
    await make_office()
    a, b = person(), person()
    held = await _book(client, a=a, b=b)
    ref = held["reference"]
    start = f"/api/v1/appointments/{ref}/recovery"
    finish = f"/api/v1/appointments/{ref}/recovery/confirm"
    stranger = person()["phone"]
    for phone in (b["phone"], stranger):
        resp = await client.post(start, json={"phone": phone})
        assert resp.status_code == 202 and resp.json() == {"status": "accepted"}
    assert await texts_to(stranger, "manage_recovery") == []
    code = await latest_code(b["phone"], "manage_recovery")
    unknown = await client.post(
        "/api/v1/appointments/GZTH-0000-0000/recovery/confirm",
        json={"phone": b["phone"], "code": code},
    )
    assert unknown.status_code == 404
    for phone, wrong in ((b["phone"], WRONG), (stranger, code), (a["phone"], code)):
        resp = await client.post(finish, json={"phone": phone, "code": wrong})
        assert _problem(resp) == _problem(unknown)
    ok = await client.post(finish, json={"phone": b["phone"], "code": code})
    assert ok.status_code == 200, ok.text
    new_token = ok.json()["manage_token"]
    assert new_token and new_token != held["manage_token"]
    view = f"/api/v1/appointments/{ref}"
    assert (await client.get(view, headers={"X-Manage-Token": new_token})).status_code == 200
    old = await client.get(view, headers={"X-Manage-Token": held["manage_token"]})
    assert old.status_code == 404
    # A code opens once.
    again = await client.post(finish, json={"phone": b["phone"], "code": code})
    assert again.status_code == 404


async def test_recovery_codes_are_limited(client: httpx.AsyncClient) -> None:
    await make_office()
    a, b = person(), person()
    held = await _book(client, a=a, b=b)
    start = f"/api/v1/appointments/{held['reference']}/recovery"
    for _ in range(5):
        resp = await client.post(start, json={"phone": a["phone"]})
        assert resp.status_code == 202
    # Three texts a day per partner; the answer does not change after that.
    assert len(await texts_to(a["phone"], "manage_recovery")) == 3


async def _accept_us_phones(client: httpx.AsyncClient) -> None:
    from tests.helpers import staff_token

    admin = await staff_token(client, "regions.root", role="superadmin")
    url = "/api/v1/admin/policies/sms_countries"
    value = (await client.get(url, headers=admin)).json()["value"]
    value["office_regions"] = {"GZ-TH": ["CN", "HK", "MO", "TW", "US"]}
    assert (await client.put(url, json=value, headers=admin)).status_code == 200


async def test_confirmation_text_carries_the_manage_code_or_link(
    client: httpx.AsyncClient,
) -> None:
    """Mainland numbers (no links allowed) get the code; others get the link."""
    await make_office()
    a = person()
    b = person() | {"phone": "+14155550123"}
    await _accept_us_phones(client)  # not a default region (issue 13.3)
    held = await _book(client, a=a, b=b)
    ref, token = held["reference"], held["manage_token"]
    for party in (a, b):
        template = "code"
        code = await latest_code(party["phone"], template)
        role = "a" if party is a else "b"
        resp = await client.post(
            f"/api/v1/appointments/{ref}/confirm", json={"party": role, "code": code}
        )
        assert resp.status_code == 200, resp.text
    (mainland,) = await texts_to(a["phone"], "confirmed")
    (abroad,) = await texts_to(b["phone"], "confirmed")
    assert token in mainland and "http" not in mainland
    assert f"/manage/{ref}?token={token}" in abroad
    from scheduler.db.couple_tables import ManageText

    assert await ManageText.count() == 0  # the sealed copy is gone once texted
    from scheduler.usecases.policy import policies

    policies.invalidate()  # the office's wider regions stay in this test's database


def test_the_manage_link_travels_only_where_it_fits() -> None:
    """Link where links are allowed and the text stays within the country's segment
    limit; else the code (mainland: no links); never a text over the limit."""
    from scheduler.domain.sms import violations
    from scheduler.notify.terms import SmsTerms
    from scheduler.notify.texts import file_rules, render_for
    from scheduler.settings import get_settings
    from scheduler.usecases.booking.manage_text import manage_fields

    settings = get_settings()
    terms = SmsTerms(  # the shipped country rules, as the policy store hands them on
        countries=file_rules(settings.sms_rules_file),
        quiet_hours=None,
        rate_per_second=settings.sms_rate_per_second,
        default_timezone=settings.default_timezone,
        validity_seconds=settings.sms_validity_seconds,
    )

    token = "t" * 32
    link = "https://yuyue.example.gov.cn/manage/GZTH-7K4Q-9M2X?token=" + token
    payload = {
        "reference": "GZTH-7K4Q-9M2X",
        "service": "marriage",
        "office": "广州市天河区婚姻登记处",
        "date": "2027-02-14",
        "start": "09:30",
    }
    cases = [
        ("zh-Hans", "+8613800138000", "manage_code"),  # no links to the mainland
        ("zh-Hant", "+85291234567", "manage_code"),  # a link would need a third segment
        ("zh-Hans", "+14155550100", "manage_link"),
        ("en", "+14155550100", "manage_link"),
    ]
    for locale, phone, expected in cases:
        body = payload | ({"office": "Guangzhou Tianhe District"} if locale == "en" else {})
        chosen = manage_fields("confirmed", locale, body, phone, token, link, terms)
        assert list(chosen) == [expected], (locale, phone)
        text = render_for("confirmed", locale, body | chosen, terms.rule_for(phone))
        assert token in text and violations(text, terms.rule_for(phone)) == []
