"""Editable policies (issue 6.3): pure validation, the API (superadmin writes, admins
read; bad values 422 and nothing changes; every edit audited), the pages, and each
consumer taking the edited value: ID types at booking, quiet hours and rate in the
SMS dispatcher, per-country rules in the texts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db import audit
from scheduler.db.engine import write_transaction
from scheduler.db.policy_tables import PolicyOverride
from scheduler.db.tables import OutboxMessage
from scheduler.domain.policy import (
    NoShowRule,
    PolicyError,
    Strike,
    crossing,
    parse,
)
from scheduler.jobs.schedule import dispatch_due
from scheduler.notify import outbox
from scheduler.notify.texts import render_for
from scheduler.settings import get_settings
from scheduler.usecases.policy import policies
from tests.helpers import booking_body, make_office, open_slots, person, staff_token
from tests.test_desk_pages import make_staff, post_form, sign_in
from tests.test_outbox import RecordingBackend
from tests.test_pages import pick_slot

NO_SHOW = {"enabled": True, "no_shows": 3, "cancellations": 0, "window_days": 60, "ban_days": 30}


@pytest.fixture(autouse=True)
async def fresh_policies() -> AsyncIterator[None]:
    policies.invalidate()
    yield
    policies.invalidate()  # no override leaks into the next test's empty database


# --- pure rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "field", "reason"),
    [
        ("no_show", NO_SHOW | {"ban_days": 0}, "ban_days", "range"),
        ("no_show", NO_SHOW | {"ban_days": "90"}, "ban_days", "range"),
        ("no_show", NO_SHOW | {"no_shows": 0}, "no_shows", "no-show-nothing-counted"),
        ("no_show", NO_SHOW | {"typo": 1}, "typo", "unknown-field"),
        ("no_show", {"enabled": True}, "no_shows", "required"),
        ("no_show", [], "value", "object"),
        ("id_types", {"accepted": []}, "accepted", "id-types-empty"),
        ("id_types", {"accepted": ["visa"]}, "accepted", "id-type-unknown"),
        (
            "id_types",
            {"accepted": ["passport"], "by_service": {"wedding": ["passport"]}},
            "by_service.wedding",
            "unknown-field",
        ),
        ("sms_quiet_hours", {"enabled": True, "start": "25:00", "end": "08:00"}, "start", "clock"),
        (
            "sms_quiet_hours",
            {"enabled": True, "start": "08:00", "end": "08:00"},
            "end",
            "quiet-hours-empty",
        ),
        ("sms_rate", {"per_second": 0}, "per_second", "rate"),
        ("sms_rate", {"per_second": True}, "per_second", "rate"),
        (
            "sms_countries",
            {
                "default": {"signature": "", "allow_urls": True, "max_segments": 3},
                "countries": {"+86": {}},
            },
            "countries.+86",
            "calling-code",
        ),
        (
            "sms_countries",
            {"default": {"signature": "x" * 17, "allow_urls": True, "max_segments": 3}},
            "default.signature",
            "signature",
        ),
    ],
)
def test_bad_values_name_the_field(name: str, raw: Any, field: str, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(name, raw)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_good_values_round_trip() -> None:
    for name, raw in [
        ("no_show", NO_SHOW),
        (
            "id_types",
            {"accepted": ["passport", "mainland_id"], "by_service": {"divorce": ["mainland_id"]}},
        ),
        ("sms_quiet_hours", {"enabled": False, "start": "22:00", "end": "07:30"}),
        ("sms_rate", {"per_second": 2.5}),
        ("sms_countries", {"default": {"signature": "", "allow_urls": True, "max_segments": 3}}),
    ]:
        value = parse(name, raw)
        assert parse(name, value.to_json()) == value
    types = parse("id_types", {"accepted": ["passport", "mainland_id", "passport"]})
    assert types.accepted == ("mainland_id", "passport")  # canonical order, once each


def test_crossing_counts_each_kind_within_its_window() -> None:
    rule = NoShowRule(no_shows=2, cancellations=3, window_days=30, ban_days=10)
    day = datetime(2027, 1, 1, tzinfo=UTC)

    def s(days: int, kind: str, n: int) -> Strike:
        return Strike(day + timedelta(days=days), kind, n, 1)

    assert crossing([s(0, "no_show", 1), s(31, "no_show", 2)], rule) is None  # 31 days apart
    hit = crossing([s(0, "no_show", 1), s(30, "no_show", 2)], rule)
    assert hit is not None and hit.appointment_id == 2
    mixed = [s(0, "no_show", 1), s(1, "cancelled", 2), s(2, "cancelled", 3)]
    assert crossing(mixed, rule) is None  # kinds are not added up
    assert crossing([*mixed, s(3, "cancelled", 4)], rule) == mixed[-1].__class__(
        day + timedelta(days=3), "cancelled", 4, 1
    )
    assert crossing([s(0, "no_show", 1), s(1, "no_show", 2)], NoShowRule(enabled=False)) is None
    assert crossing([s(0, "no_show", 1)], NoShowRule(no_shows=1, cancellations=0)) is not None


# --- API ---------------------------------------------------------------------------------


@pytest.fixture
async def staff(client: httpx.AsyncClient, db: None) -> dict[str, dict[str, str]]:
    await make_office(days_ahead=3)
    return {
        "root": await staff_token(client, "root", role="superadmin", offices=()),
        "admin": await staff_token(client, "th.admin", role="admin"),
    }


async def test_permissions_of_the_policy_api(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    url = "/api/v1/admin/policies/no_show"
    staff["clerk"] = await staff_token(client, "th.clerk")
    for path in ("/api/v1/admin/policies", url):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=staff["clerk"])).status_code == 403
        assert (await client.get(path, headers=staff["admin"])).status_code == 200
    assert (await client.put(url, json=NO_SHOW)).status_code == 401
    assert (await client.put(url, json=NO_SHOW, headers=staff["clerk"])).status_code == 403
    assert (await client.put(url, json=NO_SHOW, headers=staff["admin"])).status_code == 403
    assert await PolicyOverride.count() == 0
    missing = await client.get("/api/v1/admin/policies/no_such", headers=staff["admin"])
    assert missing.status_code == 404
    put = await client.put("/api/v1/admin/policies/no_such", json={}, headers=staff["root"])
    assert put.status_code == 404


async def test_bad_values_are_422_and_change_nothing(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    url = "/api/v1/admin/policies/no_show"
    before = (await client.get(url, headers=staff["admin"])).json()
    assert before["value"] == NoShowRule().to_json() and before["overridden"] is False
    for body, field in [
        (NO_SHOW | {"window_days": 9999}, "window_days"),
        (NO_SHOW | {"enabled": "yes"}, "enabled"),
        ({k: v for k, v in NO_SHOW.items() if k != "ban_days"}, "ban_days"),
        (NO_SHOW | {"extra": 1}, "extra"),
    ]:
        resp = await client.put(url, json=body, headers=staff["root"] | {"Accept-Language": "en"})
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert problem["type"].endswith("/invalid-input") and problem["field"] == field
    not_json = await client.put(
        url, content=b"[1, 2]", headers=staff["root"] | {"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert (await client.get(url, headers=staff["admin"])).json() == before
    assert await audit.entries("policy", "no_show") == []


async def test_every_edit_is_audited_with_before_and_after(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    url = "/api/v1/admin/policies/no_show"
    first = await client.put(url, json=NO_SHOW, headers=staff["root"])
    assert first.status_code == 200, first.text
    assert first.json()["value"] == NO_SHOW and first.json()["overridden"] is True
    second = await client.put(url, json=NO_SHOW | {"enabled": False}, headers=staff["root"])
    assert second.status_code == 200
    trail = await audit.entries("policy", "no_show")
    assert [(e["action"], e["actor_name"]) for e in trail] == [("policy.update", "root")] * 2
    assert trail[0]["before"] == NoShowRule().to_json() and trail[0]["after"] == NO_SHOW
    assert trail[1]["before"] == NO_SHOW and trail[1]["after"]["enabled"] is False
    listed = (await client.get("/api/v1/admin/policies", headers=staff["admin"])).json()
    assert {p["name"] for p in listed} == set(policies.NAMES)
    assert next(p for p in listed if p["name"] == "no_show")["updated_by"] == "root"


async def test_narrowing_id_types_refuses_a_passport_booking(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    from scheduler.db.tables import Office

    # A passport holder marries at a designated office (config/rules/, issue 12).
    await Office.update({Office.designated: True}).where(Office.code == "GZ-TH")
    slots = await open_slots(client)
    foreigner = {
        "name": "Anna Smith",
        "id_type": "passport",
        "id_number": "E12345678",
        "phone": "+8613912345678",
    }
    body = {
        "accepted": list(("mainland_id", "passport")),
        "by_service": {"marriage": ["mainland_id"]},
    }
    resp = await client.put("/api/v1/admin/policies/id_types", json=body, headers=staff["root"])
    assert resp.status_code == 200, resp.text
    # The booking page offers only the accepted types.
    form = await client.get(await pick_slot(client))
    assert form.status_code == 200 and 'value="mainland_id"' in form.text
    assert 'value="passport"' not in form.text
    refused = await client.post(
        "/api/v1/appointments", json=booking_body(slots[0]["id"], b=foreigner)
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "party_b.id_type"
    assert (
        await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"]))
    ).status_code == 201
    resp = await client.put(
        "/api/v1/admin/policies/id_types",
        json={"accepted": ["mainland_id", "passport"]},
        headers=staff["root"],
    )
    assert resp.status_code == 200
    again = await client.post(
        "/api/v1/appointments", json=booking_body(slots[0]["id"], b=foreigner)
    )
    assert again.status_code == 201, again.text


# --- SMS consumers ---------------------------------------------------------------------------

TEN_LOCAL = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


async def _reminder(key: str) -> None:
    async with write_transaction():
        await outbox.enqueue(
            key=key,
            to_phone="+8613800138000",
            template="code",
            locale="zh-Hans",
            payload={"code": "123456", "reference": "GZTH-AAAA-BBBB", "minutes": 15},
            now=TEN_LOCAL,
            tz="Asia/Shanghai",
            terms=await policies.sms_terms(get_settings()),
        )


async def test_quiet_hours_change_what_the_dispatcher_holds(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    url = "/api/v1/admin/policies/sms_quiet_hours"
    quiet = {"enabled": True, "start": "09:00", "end": "11:30"}
    assert (await client.put(url, json=quiet, headers=staff["root"])).status_code == 200
    await _reminder("held")
    backend = RecordingBackend()
    assert await dispatch_due(backend, "w1", TEN_LOCAL, settings=get_settings()) == 0
    held = await OutboxMessage.select().where(OutboxMessage.key == "held").first()
    assert held is not None and held["status"] == "pending"
    assert held["due_at"] == datetime(2026, 12, 1, 3, 30, tzinfo=UTC)  # 11:30 local
    off = quiet | {"enabled": False}
    assert (await client.put(url, json=off, headers=staff["root"])).status_code == 200
    await _reminder("sent")
    assert await dispatch_due(backend, "w1", TEN_LOCAL, settings=get_settings()) == 1
    assert [m for m in backend.sent] and backend.sent[0][0] == "+8613800138000"
    statuses = {r["key"]: r["status"] for r in await OutboxMessage.select()}
    assert statuses == {"held": "pending", "sent": "sent"}


async def test_sms_rate_bounds_what_one_run_claims(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    for i in range(6):
        await _reminder(f"m{i}")
    url = "/api/v1/admin/policies/sms_rate"
    assert (await client.put(url, json={"per_second": 0}, headers=staff["root"])).status_code == 422
    assert (await client.put(url, json={"per_second": 1}, headers=staff["root"])).status_code == 200
    backend = RecordingBackend()
    # One run covers a 2-second window: at 1/s it claims 2 of the 6 due messages.
    fast = get_settings().__class__(**{**get_settings().__dict__, "sms_rate_per_second": 10_000.0})
    sent = await dispatch_due(backend, "w1", TEN_LOCAL + timedelta(hours=2), settings=fast)
    assert sent == 2


async def test_country_rules_are_checked_against_every_text(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    url = "/api/v1/admin/policies/sms_countries"
    current = (await client.get(url, headers=staff["admin"])).json()["value"]
    assert current["countries"]["86"]["signature"] == "【婚姻登记】"  # config/sms_rules.toml
    too_tight = {
        **current,
        "countries": {
            **current["countries"],
            "86": current["countries"]["86"] | {"max_segments": 1},
        },
    }
    resp = await client.put(url, json=too_tight, headers=staff["root"])
    assert resp.status_code == 422 and resp.json()["field"] == "countries.86.max_segments"
    signed = {
        **current,
        "countries": {
            **current["countries"],
            "852": {"signature": "[HK]", "allow_urls": True, "max_segments": 3},
        },
    }
    assert (await client.put(url, json=signed, headers=staff["root"])).status_code == 200
    terms = await policies.sms_terms(get_settings())
    text = render_for(
        "code",
        "en",
        {"code": "123456", "reference": "X", "minutes": 15},
        terms.rule_for("+85291234567"),
    )
    assert text.startswith("[HK]")


# --- pages ---------------------------------------------------------------------------------------

PAGES = ["/staff/admin/policies", "/staff/admin/policies/no_show", "/staff/admin/bans"]


async def test_pages_permissions(client: httpx.AsyncClient, db: None) -> None:
    await make_office(days_ahead=3)
    for url in PAGES:
        resp = await client.get(url)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/staff/login")
    await make_staff("th.clerk", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    for url in PAGES:
        assert (await client.get(url)).status_code == 403, url
    resp = await post_form(client, "/staff/admin/policies/no_show", _form(NO_SHOW))
    assert resp.status_code == 403


def _form(value: dict[str, Any]) -> dict[str, str]:
    form = {k: str(v) for k, v in value.items() if k != "enabled"}
    return form | ({"enabled": "on"} if value.get("enabled") else {})


async def test_admin_reads_superadmin_edits_through_the_pages(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(days_ahead=3)
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await sign_in(client, "th.admin")
    for url in PAGES + [f"/staff/admin/policies/{n}" for n in policies.NAMES]:
        assert (await client.get(url)).status_code == 200, url
    page = await client.get("/staff/admin/policies/no_show")
    assert 'id="readonly"' in page.text and 'id="save-button"' not in page.text
    assert (
        await post_form(client, "/staff/admin/policies/no_show", _form(NO_SHOW))
    ).status_code == 403
    assert (await client.get("/staff/admin/policies/nope")).status_code == 404

    await client.post("/staff/logout")  # whatever the form, sign in as the superadmin
    await make_staff("root", role="superadmin")
    client.cookies.clear()
    await sign_in(client, "root")
    no_csrf = await client.post("/staff/admin/policies/no_show", data=_form(NO_SHOW))
    assert no_csrf.status_code == 403
    bad = await post_form(
        client, "/staff/admin/policies/no_show?lang=en", _form(NO_SHOW | {"ban_days": "abc"})
    )
    assert bad.status_code == 422
    assert "Expected a whole number from 1 to 730." in bad.text and 'value="abc"' in bad.text
    assert await PolicyOverride.count() == 0
    good = await post_form(client, "/staff/admin/policies/no_show", _form(NO_SHOW))
    assert good.status_code == 303 and good.headers["location"].endswith("notice=saved")
    assert (await policies.view("no_show", get_settings()))["value"] == NO_SHOW
    hours = await post_form(
        client, "/staff/admin/policies/sms_quiet_hours", {"start": "22:00", "end": "07:00"}
    )
    assert hours.status_code == 303
    assert (await policies.current()).quiet_hours(get_settings()) is None  # unchecked: off
    types = await post_form(
        client,
        "/staff/admin/policies/id_types",
        {"accepted": "mainland_id", "own_divorce": "on", "types_divorce": "passport"},
    )
    assert types.status_code == 303, types.text
    assert (await policies.current()).id_types().for_service("divorce") == ("passport",)
    assert [e["action"] for e in await audit.entries("policy", "id_types")] == ["policy.update"]
    rule = {"signature": "【登记】", "allow_urls": "", "max_segments": "2"}
    countries = await post_form(
        client,
        "/staff/admin/policies/sms_countries",
        {f"{k}_default": v for k, v in rule.items() if k != "signature"}
        | {"rows": "2", "code_0": "+86", "code_1": ""}
        | {f"{k}_0": v for k, v in rule.items()},
    )
    assert countries.status_code == 303, countries.text
    saved = (await policies.view("sms_countries", get_settings()))["value"]
    assert saved["countries"] == {
        "86": {"signature": "【登记】", "allow_urls": False, "max_segments": 2}
    }
    assert saved["default"]["signature"] == "" and saved["default"]["max_segments"] == 2
    assert time(22, 0) == (await policies.current()).overrides["sms_quiet_hours"].start
    _ = person  # helpers share one numbering of people across files
