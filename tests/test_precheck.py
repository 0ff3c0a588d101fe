"""The document pre-check end to end: the couple submits and corrects through the API
and the manage pages, a clerk reviews through the API and the desk pages, both
partners get one SMS per review, the day view shows who is pre-checked; bad input
changes nothing, a wrong token is 404, every staff route is guarded and scoped."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.audit import entries
from scheduler.db.tables import OutboxMessage
from scheduler.domain.precheck import PartyData
from scheduler.kernel.errors import DomainError
from scheduler.usecases.desk import precheck
from tests.helpers import booking_body, make_office, open_slots, sms_codes, staff_token
from tests.test_desk_pages import make_staff, post_form, says, sign_in

# The 2025-05-10 rule set (config/rules/): ID card and signed declaration, no 户口簿.
MARRIAGE_DOCS = ["id_card", "declaration", "photos"]


async def booked(
    client: httpx.AsyncClient, office: str = "GZ-TH", service: str = "marriage"
) -> dict[str, Any]:
    """A confirmed couple (slot two days ahead or later) with its manage token."""
    slot = (await open_slots(client, office, service))[0]
    body = booking_body(slot["id"], service=service)
    held = (await client.post("/api/v1/appointments", json=body)).json()
    codes = await sms_codes(held["reference"])
    for role in ("a", "b"):
        resp = await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
        assert resp.status_code == 200, resp.text
    return held | {"body": body, "token_header": {"X-Manage-Token": held["manage_token"]}}


def party(**changes: Any) -> dict[str, Any]:
    return {
        "nationality": "CN",
        "occupation": "教师",
        "education": "bachelor",
        "marital_status": "unmarried",
        "documents": MARRIAGE_DOCS,
    } | changes


def submission(**a_changes: Any) -> dict[str, Any]:
    return {"party_a": party(**a_changes), "party_b": party(marital_status="divorced")}


async def sms_rows() -> list[tuple[str, str, str]]:
    rows = await OutboxMessage.select(
        OutboxMessage.template, OutboxMessage.to_phone, OutboxMessage.key
    ).where(OutboxMessage.template.like("precheck_%"))
    return sorted((r["template"], r["to_phone"], r["key"]) for r in rows)


def slug(resp: httpx.Response) -> str:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    return str(resp.json()["type"].rsplit("/", 1)[1])


@pytest.fixture
async def office(db: None) -> None:
    await make_office(code="GZ-TH", days_ahead=5, services=("marriage", "ceremony"))
    await make_office(code="SZ-FT", days_ahead=5)


async def test_submit_correct_resubmit_approve_through_the_api(
    client: httpx.AsyncClient, office: None
) -> None:
    couple = await booked(client)
    ref, token = couple["reference"], couple["token_header"]
    url = f"/api/v1/appointments/{ref}/precheck"
    fresh = (await client.get(url, headers=token)).json()
    assert fresh["status"] == "not_submitted" and fresh["editable"] is True
    assert fresh["parties"][0]["required_documents"] == MARRIAGE_DOCS
    assert "marital_status" in fresh["fields"]

    sent = await client.put(url, json=submission(documents=["id_card"]), headers=token)
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "submitted" and sent.json()["version"] == 1
    assert sent.json()["parties"][0]["missing_documents"] == ["declaration", "photos"]

    clerk = await staff_token(client, "th.clerk")
    listed = await client.get(
        "/api/v1/offices/GZ-TH/prechecks",
        params={"date": couple["slot"]["date"], "status": "submitted"},
        headers=clerk,
    )
    assert [r["reference"] for r in listed.json()] == [ref]
    id_number = couple["body"]["party_a"]["id_number"]
    assert id_number not in listed.text and "教师" not in listed.text  # masked, no data

    review = f"/api/v1/offices/GZ-TH/prechecks/{ref}/review"
    asked = await client.post(
        review,
        json={"decision": "needs_correction", "note": "请勾选并携带结婚照片", "version": 1},
        headers=clerk,
    )
    assert asked.status_code == 200, asked.text
    seen = (await client.get(url, headers=token)).json()
    assert seen["status"] == "needs_correction" and seen["note"] == "请勾选并携带结婚照片"
    phones = sorted(couple["body"][p]["phone"] for p in ("party_a", "party_b"))
    assert [(t, p) for t, p, _ in await sms_rows()] == [
        ("precheck_needs_correction", phones[0]),
        ("precheck_needs_correction", phones[1]),
    ]

    # The correction goes back to "submitted" as version 2; version 1 can no longer be reviewed.
    fixed = await client.put(url, json=submission(), headers=token)
    assert (fixed.json()["status"], fixed.json()["version"]) == ("submitted", 2)
    stale = await client.post(review, json={"decision": "approved", "version": 1}, headers=clerk)
    assert stale.status_code == 409 and slug(stale) == "precheck-changed"
    approved = await client.post(review, json={"decision": "approved", "version": 2}, headers=clerk)
    assert approved.json()["status"] == "approved"
    again = await client.post(review, json={"decision": "approved"}, headers=clerk)
    assert again.status_code == 409 and slug(again) == "precheck-not-submitted"
    rows = await sms_rows()
    assert (
        sorted(t for t, _, _ in rows)
        == ["precheck_approved"] * 2 + ["precheck_needs_correction"] * 2
    )
    audit = await entries("appointment", ref)
    assert [(e["action"], e["actor_name"]) for e in audit] == [
        ("precheck.needs_correction", "th.clerk"),
        ("precheck.approved", "th.clerk"),
    ]
    assert audit[0]["after"] == {"status": "needs_correction", "note": "请勾选并携带结婚照片"}

    # Sending the approved data again keeps the approval; a change asks for a new review.
    same = await client.put(url, json=submission(), headers=token)
    assert (same.json()["status"], same.json()["version"]) == ("approved", 2)
    changed = await client.put(url, json=submission(occupation="工程师"), headers=token)
    assert (changed.json()["status"], changed.json()["version"]) == ("submitted", 3)
    assert len(await sms_rows()) == 4


async def test_invalid_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient, office: None
) -> None:
    couple = await booked(client)
    ref, token = couple["reference"], couple["token_header"]
    url = f"/api/v1/appointments/{ref}/precheck"
    assert (await client.put(url, json=submission(), headers=token)).status_code == 200
    before = (await client.get(url, headers=token)).json()
    bad = [
        (submission(nationality="China"), "party_a.nationality"),
        (submission(education="phd"), "party_a.education"),
        (submission(marital_status="married"), "party_a.marital_status"),
        (submission(occupation=" "), "party_a.occupation"),
        (submission(documents=["divorce_agreement"]), "party_a.documents"),
        (submission(occupation="x" * 60), "party_a.occupation"),
        (submission(favourite_colour="red"), None),
        ({"party_a": party()}, None),
    ]
    for body, field in bad:
        resp = await client.put(url, json=body, headers=token)
        assert resp.status_code == 422 and slug(resp) == "invalid-input", (body, resp.text)
        if field:
            assert resp.json()["field"] == field
    assert (await client.get(url, headers=token)).json() == before

    clerk = await staff_token(client, "th.clerk")
    review = f"/api/v1/offices/GZ-TH/prechecks/{ref}/review"
    for body in (
        {"decision": "needs_correction", "note": "  "},
        {"decision": "rejected"},
        {"decision": "approved", "extra": 1},
        {"decision": "approved", "note": "x" * 501},
    ):
        resp = await client.post(review, json=body, headers=clerk)
        assert resp.status_code == 422 and slug(resp) == "invalid-input", body
    assert (await client.get(url, headers=token)).json() == before
    assert await sms_rows() == [] and await entries("appointment", ref) == []
    bad_status = await client.get(
        "/api/v1/offices/GZ-TH/prechecks", params={"status": "nope"}, headers=clerk
    )
    assert bad_status.status_code == 422


async def test_wrong_token_is_404_like_an_unknown_reference(
    client: httpx.AsyncClient, office: None
) -> None:
    couple = await booked(client)
    url = f"/api/v1/appointments/{couple['reference']}/precheck"
    for headers in ({}, {"X-Manage-Token": "not-the-token"}):
        got = await client.get(url, headers=headers)
        assert got.status_code == 404 and slug(got) == "not-found"
        put = await client.put(url, json=submission(), headers=headers)
        assert put.status_code == 404 and slug(put) == "not-found"
    unknown = await client.get(
        "/api/v1/appointments/GZTH-AAAA-AAAA/precheck", headers=couple["token_header"]
    )
    assert unknown.status_code == 404
    assert (await client.get(url, headers=couple["token_header"])).json()["status"] == (
        "not_submitted"
    )


async def test_closed_after_cancel_on_the_day_and_for_ceremonies(
    client: httpx.AsyncClient, office: None
) -> None:
    couple = await booked(client)
    ref = couple["reference"]
    sub = precheck.Submission(
        party_a=PartyData(
            nationality="CN",
            occupation="医生",
            education="bachelor",
            marital_status="unmarried",
            hukou_address="天河路 1 号",
        ),
        party_b=PartyData(
            nationality="CN",
            occupation="医生",
            education="bachelor",
            marital_status="widowed",
            hukou_address="天河路 2 号",
        ),
    )
    # On the appointment's own day (office time) the form is closed.
    start = datetime.fromisoformat(couple["slot"]["start_at"])
    on_the_day = start.replace(hour=0, minute=1).astimezone(UTC)
    with pytest.raises(DomainError) as caught:
        await precheck.submit(ref, couple["manage_token"], sub, now=on_the_day)
    assert (caught.value.slug, caught.value.params) == ("precheck-closed", {"reason": "day"})
    day_before = start.replace(hour=23, minute=59).astimezone(UTC) - timedelta(days=1)
    done = await precheck.submit(ref, couple["manage_token"], sub, now=day_before)
    assert done["status"] == "submitted"

    url = f"/api/v1/appointments/{ref}/precheck"
    cancel = await client.post(f"/api/v1/appointments/{ref}/cancel", headers=couple["token_header"])
    assert cancel.status_code == 200
    closed = await client.put(url, json=submission(), headers=couple["token_header"])
    assert closed.status_code == 409 and slug(closed) == "precheck-closed"
    view = (await client.get(url, headers=couple["token_header"])).json()
    assert view["editable"] is False and view["status"] == "submitted"
    clerk = await staff_token(client, "th.clerk")
    late = await client.post(
        f"/api/v1/offices/GZ-TH/prechecks/{ref}/review",
        json={"decision": "approved"},
        headers=clerk,
    )
    assert late.status_code == 409 and slug(late) == "precheck-closed"

    ceremony = await booked(client, service="ceremony")
    resp = await client.put(
        f"/api/v1/appointments/{ceremony['reference']}/precheck",
        json=submission(),
        headers=ceremony["token_header"],
    )
    assert resp.status_code == 409 and slug(resp) == "precheck-not-offered"
    assert await sms_rows() == []


STAFF_API = [
    ("GET", "/api/v1/offices/{office}/prechecks", None),
    ("GET", "/api/v1/offices/{office}/prechecks/{ref}", None),
    ("POST", "/api/v1/offices/{office}/prechecks/{ref}/review", {"decision": "approved"}),
]


@pytest.mark.parametrize(("method", "path", "body"), STAFF_API)
async def test_staff_api_is_guarded_and_scoped(
    client: httpx.AsyncClient, office: None, method: str, path: str, body: Any
) -> None:
    couple = await booked(client, "SZ-FT")
    token = couple["token_header"]
    put = await client.put(
        f"/api/v1/appointments/{couple['reference']}/precheck", json=submission(), headers=token
    )
    assert put.status_code == 200
    url = path.format(office="SZ-FT", ref=couple["reference"])
    anonymous = await client.request(method, url, json=body)
    assert anonymous.status_code == 401 and slug(anonymous) == "unauthorized"
    bogus = await client.request(method, url, json=body, headers={"Authorization": "Bearer x"})
    assert bogus.status_code == 401
    tianhe = await staff_token(client, "th.clerk", offices=("GZ-TH",))
    other = await client.request(method, url, json=body, headers=tianhe)
    assert other.status_code == 404 and slug(other) == "not-found"
    # Futian's reference through Tianhe's own office: not found either.
    own_office = path.format(office="GZ-TH", ref=couple["reference"])
    if "{ref}" in path:
        assert (
            await client.request(method, own_office, json=body, headers=tianhe)
        ).status_code == 404
    assert await sms_rows() == [] and await entries("appointment", couple["reference"]) == []
    # Every role from clerk up may do it in its own offices.
    for name, role, offices in (
        ("ft.clerk", "clerk", ("SZ-FT",)),
        ("ft.admin", "admin", ("SZ-FT",)),
        ("root", "superadmin", ()),
    ):
        if method == "POST" and name != "ft.clerk":
            continue  # one review only: the next would be 409 (reviewed already)
        headers = await staff_token(client, name, role=role, offices=offices)
        resp = await client.request(method, url, json=body, headers=headers)
        assert resp.status_code == 200, (name, resp.text)


async def test_concurrent_reviews_approve_once_and_text_once(
    client: httpx.AsyncClient, office: None
) -> None:
    couple = await booked(client)
    ref = couple["reference"]
    await client.put(
        f"/api/v1/appointments/{ref}/precheck", json=submission(), headers=couple["token_header"]
    )
    clerks = [await staff_token(client, f"clerk.{i}") for i in range(4)]
    url = f"/api/v1/offices/GZ-TH/prechecks/{ref}/review"
    results = await asyncio.gather(
        *(
            client.post(url, json={"decision": d, "note": "补照片", "version": 1}, headers=h)
            for h, d in zip(clerks, ["approved", "needs_correction"] * 2, strict=True)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [r.text for r in results]
    winner = next(r.json()["status"] for r in results if r.status_code == 200)
    assert [t for t, _, _ in await sms_rows()] == [f"precheck_{winner}"] * 2
    assert len(await entries("appointment", ref)) == 1


async def test_concurrent_submissions_of_one_couple_keep_one_consistent_record(
    client: httpx.AsyncClient, office: None
) -> None:
    """Both partners (or a retrying app) sending at once: every request answers 200,
    one pre-check with exactly two party rows remains, holding one of the versions sent."""
    from scheduler.db.precheck_tables import Precheck, PrecheckParty

    couple = await booked(client)
    url = f"/api/v1/appointments/{couple['reference']}/precheck"
    jobs = ["教师", "医生", "工程师", "律师", "护士", "厨师"]
    results = await asyncio.gather(
        *(
            client.put(url, json=submission(occupation=j), headers=couple["token_header"])
            for j in jobs
        )
    )
    assert [r.status_code for r in results] == [200] * len(jobs), [r.text for r in results]
    assert await Precheck.count() == 1 and await PrecheckParty.count() == 2
    final = (await client.get(url, headers=couple["token_header"])).json()
    assert final["status"] == "submitted" and final["parties"][0]["occupation"] in jobs
    # Each request that changed the data raised the version once: none was lost.
    assert final["version"] == len(jobs)


# --- pages -----------------------------------------------------------------------------


async def test_couple_pages_submit_and_see_the_clerks_note(
    client: httpx.AsyncClient, office: None
) -> None:
    couple = await booked(client)
    ref = couple["reference"]
    opened = await client.get(f"/manage/{ref}", params={"token": couple["manage_token"]})
    assert opened.status_code == 303  # the token moves into the cookie
    manage = await client.get(f"/manage/{ref}")
    assert 'id="precheck-link"' in manage.text
    assert 'id="precheck-summary" data-status="not_submitted"' in manage.text

    form = await client.get(f"/manage/{ref}/precheck")
    # Nationality is a choice list; no household-register field or document (2025 set).
    assert form.status_code == 200 and 'name="party_b.hukou_address"' not in form.text
    assert 'name="party_a.doc.hukou_book"' not in form.text
    assert 'name="party_a.doc.declaration"' in form.text
    assert '<select id="f-party_b-nationality" name="party_b.nationality"' in form.text
    assert '<option value="HK">中国香港</option>' in form.text
    fields = {
        f"party_{r}.{k}": v
        for r in ("a", "b")
        for k, v in party(marital_status="unmarried" if r == "a" else "widowed").items()
        if k != "documents"
    } | {"party_a.doc.id_card": "on", "party_b.doc.photos": "on"}

    bad = await post_form(
        client, f"/manage/{ref}/precheck", fields | {"party_b.nationality": "中国"}
    )
    assert bad.status_code == 422
    assert says(bad, "error.invalid-input.precheck-nationality")
    assert 'value="教师"' in bad.text  # what was typed is kept
    assert (await precheck.view(ref, couple["manage_token"], now=datetime.now(UTC)))[
        "status"
    ] == "not_submitted"
    no_csrf = await client.post(f"/manage/{ref}/precheck", data=fields)
    assert no_csrf.status_code == 403

    saved = await post_form(client, f"/manage/{ref}/precheck", fields)
    assert saved.status_code == 303, saved.text
    shown = await client.get(saved.headers["location"])
    assert 'data-status="submitted"' in shown.text and says(shown, "precheck.page.notice.saved")
    assert re.search(r'name="party_a.doc.id_card" value="on" checked', shown.text)
    assert not re.search(r'name="party_a.doc.photos" value="on" checked', shown.text)

    clerk = await staff_token(client, "th.clerk")
    await client.post(
        f"/api/v1/offices/GZ-TH/prechecks/{ref}/review",
        json={"decision": "needs_correction", "note": "请带齐 3 张双人合照"},
        headers=clerk,
    )
    manage = await client.get(f"/manage/{ref}")
    assert 'data-status="needs_correction"' in manage.text and "请带齐 3 张双人合照" in manage.text
    page = await client.get(f"/manage/{ref}/precheck")
    assert "请带齐 3 张双人合照" in page.text
    # Without the token cookie the page is not found, like the manage page.
    client.cookies.clear()
    assert (await client.get(f"/manage/{ref}/precheck")).status_code == 404


@pytest.fixture
async def desk(client: httpx.AsyncClient, office: None) -> httpx.AsyncClient:
    """The client signed in (cookie) as a clerk of GZ-TH."""
    await make_staff("th.desk", offices=("GZ-TH",))
    await sign_in(client, "th.desk")
    return client


async def test_clerk_pages_list_review_and_day_view(desk: httpx.AsyncClient) -> None:
    # The couple uses its own client (no staff cookie), the desk its signed-in one.
    transport = desk._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as couple_c:
        first, second = await booked(couple_c), await booked(couple_c)
        for c in (first, second):
            await couple_c.put(
                f"/api/v1/appointments/{c['reference']}/precheck",
                json=submission(),
                headers=c["token_header"],
            )
    day = first["slot"]["date"]
    listed = await desk.get("/staff/offices/GZ-TH/prechecks", params={"date": day})
    assert listed.status_code == 200
    for c in (first, second):
        assert f'id="pre-{c["reference"]}" data-status="submitted"' in listed.text
        assert c["body"]["party_a"]["id_number"] not in listed.text
        assert c["body"]["party_a"]["id_number"][:3] + "***" in listed.text
    assert "教师" not in listed.text

    detail = await desk.get(f"/staff/offices/GZ-TH/prechecks/{first['reference']}")
    assert detail.status_code == 200 and "教师" in detail.text
    assert detail.headers["cache-control"] == "no-store"
    assert first["body"]["party_a"]["id_number"] not in detail.text
    assert 'name="version" value="1"' in detail.text

    url = f"/staff/offices/GZ-TH/prechecks/{first['reference']}/review"
    no_note = await post_form(desk, url, {"decision": "needs_correction", "version": "1"})
    assert no_note.status_code == 422 and says(
        no_note, "error.invalid-input.precheck-note-required"
    )
    assert (await desk.post(url, data={"decision": "approved", "version": "1"})).status_code == 403
    assert await sms_rows() == []
    done = await post_form(desk, url, {"decision": "approved", "version": "1", "note": ""})
    assert done.status_code == 303
    after = await desk.get(done.headers["location"])
    assert 'data-status="approved"' in after.text and 'id="review-done"' in after.text
    assert 'id="review-form"' not in after.text
    twice = await post_form(desk, url, {"decision": "approved", "version": "1"})
    assert twice.status_code == 409 and says(twice, "error.precheck-not-submitted")
    assert [
        (e["action"], e["actor_name"]) for e in await entries("appointment", first["reference"])
    ] == [("precheck.approved", "th.desk")]
    assert len(await sms_rows()) == 2

    # The day view (page and API) shows who is pre-checked.
    view = await desk.get("/staff/offices/GZ-TH/day", params={"date": day})
    assert re.search(
        rf'id="appt-{first["reference"]}".*?class="badge precheck-approved"', view.text, re.S
    )
    assert re.search(
        rf'id="appt-{second["reference"]}".*?class="badge precheck-submitted"', view.text, re.S
    )
    token = await staff_token(desk, "th.api")
    api_day = await desk.get(
        "/api/v1/offices/GZ-TH/appointments", params={"date": day}, headers=token
    )
    by_ref = {r["reference"]: r["precheck"] for r in api_day.json()}
    assert by_ref[first["reference"]] == "approved" and by_ref[second["reference"]] == "submitted"


async def test_clerk_pages_are_guarded_and_scoped(client: httpx.AsyncClient, office: None) -> None:
    couple = await booked(client, "SZ-FT")
    await client.put(
        f"/api/v1/appointments/{couple['reference']}/precheck",
        json=submission(),
        headers=couple["token_header"],
    )
    ref = couple["reference"]
    pages = ["/staff/offices/{o}/prechecks", f"/staff/offices/{{o}}/prechecks/{ref}"]
    review = f"/staff/offices/{{o}}/prechecks/{ref}/review"
    await client.get("/staff/login")  # the CSRF cookie
    for path in pages:
        resp = await client.get(path.format(o="SZ-FT"))
        assert resp.status_code == 303 and resp.headers["location"].startswith("/staff/login")
    anon = await post_form(client, review.format(o="SZ-FT"), {"decision": "approved"})
    assert anon.status_code == 303 and anon.headers["location"].startswith("/staff/login")

    await make_staff("th.desk", offices=("GZ-TH",))
    await sign_in(client, "th.desk")
    for office_code in ("SZ-FT", "GZ-TH", "NO-SUCH"):
        for path in pages[1:] if office_code == "GZ-TH" else pages:
            assert (await client.get(path.format(o=office_code))).status_code == 404
        resp = await post_form(client, review.format(o=office_code), {"decision": "approved"})
        assert resp.status_code == 404, office_code
    # The CSRF token is required (403) before anything else is looked at.
    assert (
        await client.post(review.format(o="SZ-FT"), data={"decision": "approved"})
    ).status_code == 403
    assert await sms_rows() == [] and await entries("appointment", ref) == []
