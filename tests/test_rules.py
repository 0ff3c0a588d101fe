"""Rule sets as data (issue 12): the 2025-05-10 set (no household register, checklists
per party kind in three languages, SMS texts), eligibility at booking, lottery and
waiting-list entry (birth dates, marriage age), designated offices, the pre-check's
birth date for permit holders, and the admin API that adds a version."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.db.lottery_tables import LotteryApplication
from scheduler.db.tables import Appointment, IdClaim, Office, OutboxMessage, Party
from scheduler.db.waitlist_tables import WaitlistEntry
from scheduler.domain.identity import make_mainland_id
from scheduler.domain.rules import (
    KINDS,
    LOCALES,
    RuleSetInvalid,
    age_on,
    birth_and_sex,
    check_parties,
    in_force,
    parse,
    party_kind,
)
from scheduler.domain.sms import CountryRule, violations
from scheduler.domain.sms import rule_for as country_rule
from scheduler.notify.texts import TEMPLATES_DIR, file_rules, render_for
from scheduler.settings import get_settings
from scheduler.usecases.policy import rules
from tests.helpers import booking_body, make_office, open_slots, person, sms_codes, staff_token
from tests.test_lottery_api import setup  # noqa: F401 - the lottery fixture
from tests.waitlist_helpers import join_body

RULES = in_force(rules.shipped(), "CN-GD", date(2026, 12, 3))
HUKOU = re.compile(r"户口|戶口|household reg|hukou", re.IGNORECASE)
_n = iter(range(1, 10_000))


def rule_for(phone: str) -> CountryRule:
    """The country rule of the shipped config/sms_rules.toml (no policy override)."""
    return country_rule(phone, file_rules(get_settings().sms_rules_file))


@pytest.fixture(autouse=True)
def fresh_rules() -> Any:
    rules.invalidate()
    yield
    rules.invalidate()  # no added version leaks into the next test's empty database


def mainland(born: date, sex: str = "male", region: str = "440106") -> str:
    """A valid 18-digit number; the 17th digit is odd for a man, even for a woman."""
    seq = f"{next(_n) % 100:02d}{1 if sex == 'male' else 2}"
    return make_mainland_id(f"{region}{born:%Y%m%d}{seq}")


def with_id(id_type: str, number: str) -> dict[str, str]:
    return person() | {"id_type": id_type, "id_number": number}


def years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


async def dated_slots(client: httpx.AsyncClient, office: str = "GZ-TH") -> list[dict[str, Any]]:
    """Open slots with their local day (``day``), soonest first."""
    start = date.today() + timedelta(days=2)
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={
            "service": "marriage",
            "from": start.isoformat(),
            "to": (start + timedelta(days=20)).isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    return [
        s | {"day": date.fromisoformat(d["date"])}
        for d in resp.json()["days"]
        if d["status"] == "open"
        for s in d["slots"]
    ]


async def nothing_stored() -> None:
    for table in (Appointment, Party, IdClaim, OutboxMessage):
        assert await table.count() == 0, table


# ------------------------------------------------------------------ the data


def test_the_shipped_set_is_the_2025_regulations_with_its_source() -> None:
    assert RULES.effective_from == date(2025, 5, 10)
    assert "804" in RULES.source["zh-Hans"] and "Order No. 804" in RULES.source["en"]
    assert dict(RULES.min_age["marriage"]) == {"male": 22, "female": 20}
    # A mainland resident marries with the ID card and a signed declaration.
    assert RULES.checklist("marriage", "mainland") == ("id_card", "declaration", "photos")
    assert RULES.checklist("divorce", "mainland")[:2] == ("id_card", "marriage_certificate")
    assert not RULES.needs_designated("marriage", "mainland")  # 全国通办
    for kind in ("hk_macau", "taiwan", "foreign", "residence_permit"):
        assert RULES.needs_designated("marriage", kind)


def test_no_checklist_names_the_household_register_in_any_language() -> None:
    for service, per_kind in RULES.checklists.items():
        for kind in per_kind:
            for locale in LOCALES:
                for label in RULES.labels(service, kind, locale):
                    assert not HUKOU.search(label), (service, kind, locale, label)
                assert not HUKOU.search(RULES.sms_bring(service, kind, locale))
    mainland_marriage = {loc: RULES.labels("marriage", "mainland", loc) for loc in LOCALES}
    assert "本人有效的居民身份证" in mainland_marriage["zh-Hans"]
    assert "本人有效的居民身分證" in mainland_marriage["zh-Hant"]


SAMPLE = {
    "code": "123456",
    "reference": "GZTH-7K4Q-9M2X",
    "minutes": 15,
    "date": "2027-02-14",
    "start": "09:30",
    "label": "M012",
    "old": "02-02 09:30",
    "new": "02-03 09:30",
    "counter": "12",
    "deadline": "02-09 09:00",
}


@pytest.mark.parametrize("locale", LOCALES)
def test_no_sms_text_mentions_the_household_register(locale: str) -> None:
    """Every SMS template × locale × service × party kind, with the checklist the
    rule set gives it, to a mainland and a Hong Kong number: no 户口簿, and each text
    still within the destination's rules."""
    templates = sorted(p.stem for p in (TEMPLATES_DIR / "sms" / locale).glob("*.txt"))
    assert {"confirmed", "reminder_day_before"} <= set(templates)
    office = "Guangzhou Tianhe District" if locale == "en" else "广州市天河区婚姻登记处"
    reason = "Epidemic control" if locale == "en" else "疫情防控"
    rendered = 0
    for template in templates:
        for service in ("marriage", "divorce", "reissue", "ceremony", "counselling"):
            for kind in KINDS:
                bring = RULES.sms_bring(service, kind, locale)
                payload = SAMPLE | {
                    "service": service,
                    "office": office,
                    "reason": reason,
                    "bring": bring,
                }
                for phone in ("+8613800138000", "+85291234567"):
                    text = render_for(template, locale, payload, rule_for(phone))
                    assert not HUKOU.search(text), (template, kind, text)
                    assert violations(text, rule_for(phone)) == [], (template, kind, text)
                    if template == "confirmed" and bring:
                        assert bring in text
                    rendered += 1
    assert rendered == len(templates) * 5 * len(KINDS) * 2


def test_party_kinds_and_what_an_id_says() -> None:
    born = date(1990, 3, 1)
    assert party_kind("mainland_id", mainland(born)) == "mainland"
    for prefix in ("81", "82", "83"):
        permit = mainland(born, region=f"{prefix}0000")
        assert party_kind("mainland_id", permit) == "residence_permit"
        assert party_kind("mainland_id", "810***********002X") == "residence_permit"  # masked
        assert birth_and_sex("mainland_id", permit) == (born, "male")
    assert party_kind("hk_macau_permit", "H12345678") == "hk_macau"
    assert party_kind("taiwan_permit", "12345678") == "taiwan"
    assert party_kind("passport", "E12345678") == "foreign"
    assert birth_and_sex("mainland_id", mainland(born, "female")) == (born, "female")
    assert birth_and_sex("passport", "E12345678") is None
    # The residence-permit holder gets their own checklist, not the mainland one.
    assert "id_card" not in RULES.checklist("marriage", "residence_permit")


def test_age_counts_the_birthday_and_29_february() -> None:
    assert age_on(date(2004, 6, 1), date(2026, 6, 1)) == 22
    assert age_on(date(2004, 6, 2), date(2026, 6, 1)) == 21
    assert age_on(date(2004, 2, 29), date(2026, 2, 28)) == 21
    assert age_on(date(2004, 2, 29), date(2026, 3, 1)) == 22


@pytest.mark.parametrize(
    ("born", "sex", "reason"),
    [
        (date(2004, 6, 2), "male", "under-age-male"),  # 22 the day after
        (date(2006, 6, 2), "female", "under-age-female"),
        (date(2020, 1, 1), "male", "under-age-male"),
        (date(2030, 1, 1), "female", "birth-date-future"),
    ],
)
def test_eligibility_refuses(born: date, sex: str, reason: str) -> None:
    from scheduler.domain.rules import Ineligible

    with pytest.raises(Ineligible) as caught:
        check_parties(
            RULES,
            "marriage",
            [
                ("a", "mainland_id", mainland(date(1990, 1, 1))),
                ("b", "mainland_id", mainland(born, sex)),
            ],
            date(2026, 6, 1),
            date(2026, 5, 1),
        )
    assert (caught.value.field, caught.value.reason) == ("party_b.id_number", reason)


def test_eligibility_admits_on_the_birthday_and_ages_only_for_marriage() -> None:
    day = date(2026, 6, 1)
    check_parties(RULES, "marriage", [("a", "mainland_id", mainland(date(2004, 6, 1)))], day, day)
    check_parties(
        RULES, "marriage", [("a", "mainland_id", mainland(date(2006, 6, 1), "female"))], day, day
    )
    check_parties(RULES, "divorce", [("a", "mainland_id", mainland(date(2010, 1, 1)))], day, day)


def test_the_set_in_force_on_the_day_applies() -> None:
    doc = copy.deepcopy(dict(RULES.raw))
    doc["effective_from"] = "2027-03-01"
    doc["min_age"] = {"marriage": {"male": 20, "female": 20}}
    later = parse(doc)
    sets = [RULES, later]
    assert in_force(sets, "CN-GD", date(2027, 2, 28)) is RULES
    assert in_force(sets, "CN-GD", date(2027, 3, 1)) is later
    assert in_force(sets, "CN-GD", date(2020, 1, 1)) is RULES  # nothing older is known


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"effective_from": "2027-02-30"}, "effective_from"),
        (
            {"checklists": {"marriage": {"mainland": ["hukou_book"]}}},
            "checklists.marriage.mainland[0]",
        ),
        ({"checklists": {"marriage": {"martian": []}}}, "checklists.marriage.martian"),
        ({"min_age": {"marriage": {"male": 0}}}, "min_age.marriage.male"),
        ({"designated_kinds": {"marriage": ["alien"]}}, "designated_kinds.marriage[0]"),
        ({"source": {"en": "x"}}, "source.zh-Hans"),
    ],
)
def test_a_bad_rule_set_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleSetInvalid) as caught:
        parse(dict(RULES.raw) | change)
    assert caught.value.field == field


# ------------------------------------------------------------------ booking


async def test_under_age_and_future_births_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office()
    slot = (await dated_slots(client))[0]
    day = slot["day"]
    cases = [
        (mainland(years_before(day, 22) + timedelta(days=1)), "under-age-male", "22"),
        (mainland(years_before(day, 20) + timedelta(days=1), "female"), "under-age-female", "20"),
        (mainland(date(2030, 1, 1)), "birth-date-future", None),
    ]
    for number, _reason, age in cases:
        body = booking_body(slot["id"], b=with_id("mainland_id", number), locale="en")
        resp = await client.post(
            "/api/v1/appointments", json=body, headers={"Accept-Language": "en"}
        )
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["type"].endswith("/invalid-input")
        assert problem["field"] == "party_b.id_number"
        assert "Party B" in problem["detail"]
        if age:
            assert age in problem["detail"] and "1047" in problem["detail"]
        else:
            assert "future" in problem["detail"]
    zh = await client.post(
        "/api/v1/appointments",
        json=booking_body(slot["id"], a=with_id("mainland_id", cases[0][0])),
        headers={"Accept-Language": "zh-CN"},
    )
    assert (
        zh.status_code == 422 and "当事人A" in zh.json()["detail"] and "22" in zh.json()["detail"]
    )
    await nothing_stored()
    # Exactly of age on the appointment day (the birthday counts): booked.
    ok = booking_body(slot["id"], b=with_id("mainland_id", mainland(years_before(day, 22))))
    assert (await client.post("/api/v1/appointments", json=ok)).status_code == 201


async def test_permit_parties_book_only_at_designated_offices(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(code="GZ-TH")
    await make_office(code="GZ-YX", designated=True)
    await make_office(code="SZ-FT", designated=True, services=("divorce",))
    hk = with_id("hk_macau_permit", "H12345678")
    slot = (await open_slots(client, "GZ-TH"))[0]
    refused = await client.post(
        "/api/v1/appointments",
        json=booking_body(slot["id"], b=hk),
        headers={"Accept-Language": "en"},
    )
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/office-not-designated")
    assert problem["offices"] == ["GZ-YX"]  # SZ-FT is designated but has no marriages
    assert problem["field"] == "party_b.id_type" and "GZ-YX" in problem["detail"]
    # A residence permit (81...) is no mainland ID card either.
    permit = with_id("mainland_id", mainland(date(1990, 1, 1), region="810000"))
    again = await client.post("/api/v1/appointments", json=booking_body(slot["id"], a=permit))
    assert again.status_code == 409 and again.json()["field"] == "party_a.id_type"
    await nothing_stored()

    designated = (await open_slots(client, "GZ-YX"))[0]
    booked = await client.post(
        "/api/v1/appointments", json=booking_body(designated["id"], a=permit, b=hk)
    )
    assert booked.status_code == 201, booked.text
    # Each partner's checklist is their own kind's, from the rule set.
    held = booked.json()
    view = await client.get(
        f"/api/v1/appointments/{held['reference']}",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    checklist = view.json()["checklist"]
    assert checklist["effective_from"] == "2025-05-10"
    kinds = {p["role"]: p["kind"] for p in checklist["parties"]}
    assert kinds == {"a": "residence_permit", "b": "hk_macau"}
    docs = {p["role"]: [d["key"] for d in p["documents"]] for p in checklist["parties"]}
    assert docs["a"][0] == "residence_permit" and docs["b"][0] == "hk_macau_permit"


async def test_confirmed_text_lists_each_partners_documents(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(code="GZ-YX", designated=True)
    slot = (await open_slots(client, "GZ-YX"))[0]
    hk = with_id("hk_macau_permit", "H87654321")
    held = (await client.post("/api/v1/appointments", json=booking_body(slot["id"], b=hk))).json()
    codes = await sms_codes(held["reference"])
    for role in ("a", "b"):
        resp = await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
        assert resp.status_code == 200
    rows = (
        await OutboxMessage.select(OutboxMessage.key, OutboxMessage.body)
        .where(OutboxMessage.template == "confirmed")
        .order_by(OutboxMessage.key)
    )
    a, b = (r["body"] for r in rows)
    assert "身份证、2寸合照3张" in a and "户口簿" not in a
    assert "回乡证或居住证、港澳身份证、公证的无配偶声明" in b


# ------------------------------------------------------------------ lottery, waiting list


async def test_lottery_applications_follow_the_same_rules(
    client: httpx.AsyncClient,
    setup: dict[str, Any],  # noqa: F811 - the imported fixture
) -> None:
    day = setup["day"]
    url = f"/api/v1/lotteries/{setup['id']}/applications"

    def application(a: dict[str, str], b: dict[str, str]) -> dict[str, Any]:
        return {
            "party_a": a,
            "party_b": b,
            "preferences": [{"office": "GZ-TH", "start": None}],
            "locale": "zh-Hans",
        }

    young = with_id("mainland_id", mainland(years_before(day, 20) + timedelta(days=1), "female"))
    future = with_id("mainland_id", mainland(date(2030, 1, 1)))
    for bad, reason in ((young, "20"), (future, None)):
        resp = await client.post(url, json=application(person(), bad))
        assert resp.status_code == 422, resp.text
        assert resp.json()["field"] == "party_b.id_number"
        if reason:
            assert reason in resp.json()["detail"]
    hk = with_id("hk_macau_permit", "H11223344")
    resp = await client.post(url, json=application(hk, person()))
    assert resp.status_code == 409 and resp.json()["type"].endswith("/office-not-designated")
    assert await LotteryApplication.count() == 0
    assert await Party.count().where(Party.application.is_not_null()) == 0
    assert await OutboxMessage.count() == 0
    ok = await client.post(url, json=application(person(), person()))
    assert ok.status_code == 201, ok.text


async def test_waiting_list_entries_follow_the_same_rules(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(code="GZ-TH")
    day = (await dated_slots(client))[0]["day"]
    young = with_id("mainland_id", mainland(years_before(day, 22) + timedelta(days=1)))
    resp = await client.post("/api/v1/waitlist", json=join_body(day.isoformat(), party_a=young))
    assert resp.status_code == 422 and resp.json()["field"] == "party_a.id_number"
    future = with_id("mainland_id", mainland(date(2030, 1, 1), "female"))
    resp = await client.post("/api/v1/waitlist", json=join_body(day.isoformat(), party_b=future))
    assert resp.status_code == 422 and resp.json()["field"] == "party_b.id_number"
    taiwan = with_id("taiwan_permit", "12345678")
    resp = await client.post("/api/v1/waitlist", json=join_body(day.isoformat(), party_b=taiwan))
    assert resp.status_code == 409 and resp.json()["offices"] == []
    assert await WaitlistEntry.count() == 0
    assert await Party.count().where(Party.entry.is_not_null()) == 0
    assert await OutboxMessage.count() == 0


# ------------------------------------------------------------------ pre-check birth date


async def test_a_permit_holders_precheck_birth_date_is_checked(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(code="GZ-YX", designated=True, days_ahead=5)
    slot = (await dated_slots(client, "GZ-YX"))[0]
    day = slot["day"]
    held = (
        await client.post(
            "/api/v1/appointments",
            json=booking_body(slot["id"], b=with_id("passport", "E99887766")),
        )
    ).json()
    url = f"/api/v1/appointments/{held['reference']}/precheck"
    token = {"X-Manage-Token": held["manage_token"], "Accept-Language": "en"}
    fresh = (await client.get(url, headers=token)).json()
    b = next(p for p in fresh["parties"] if p["role"] == "b")
    assert b["kind"] == "foreign" and {"birth_date", "sex"} <= set(b["fields"])
    a = next(p for p in fresh["parties"] if p["role"] == "a")
    assert "birth_date" not in a["fields"] and "hukou_address" not in a["fields"]
    assert b["document_labels"]["passport"]["en"].startswith("Your valid passport")

    def party(**extra: str) -> dict[str, Any]:
        return {
            "nationality": "FR",
            "occupation": "engineer",
            "education": "bachelor",
            "marital_status": "unmarried",
        } | extra

    young = years_before(day, 20) + timedelta(days=1)
    body = {
        "party_a": party(nationality="CN"),
        "party_b": party(birth_date=young.isoformat(), sex="female"),
    }
    refused = await client.put(url, json=body, headers=token)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "party_b.birth_date" and "20" in refused.json()["detail"]
    assert (await client.get(url, headers=token)).json()["status"] == "not_submitted"
    body["party_b"] = party(birth_date=years_before(day, 20).isoformat(), sex="female")
    saved = await client.put(url, json=body, headers=token)
    assert saved.status_code == 200, saved.text
    b = next(p for p in saved.json()["parties"] if p["role"] == "b")
    assert (b["birth_date"], b["sex"]) == (years_before(day, 20).isoformat(), "female")


# ------------------------------------------------------------------ admin


@pytest.fixture
async def staff(client: httpx.AsyncClient, db: None) -> AsyncIterator[dict[str, dict[str, str]]]:
    await make_office(code="GZ-TH", days_ahead=20)
    yield {
        "root": await staff_token(client, "root", role="superadmin", offices=()),
        "admin": await staff_token(client, "th.admin", role="admin"),
        "clerk": await staff_token(client, "th.clerk"),
    }


async def test_admins_see_rule_sets_and_a_superadmin_adds_a_version(
    client: httpx.AsyncClient, staff: dict[str, dict[str, str]]
) -> None:
    from scheduler.db.tables import AuditLog

    url = "/api/v1/admin/rules"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=staff["clerk"])).status_code == 403
    listed = (await client.get(url, headers=staff["admin"])).json()
    assert listed["in_force"] == "2025-05-10"
    assert [v["origin"] for v in listed["versions"]] == ["shipped"]

    slots = await dated_slots(client)
    later_day = slots[-1]["day"].isoformat()
    doc = copy.deepcopy(listed["versions"][0]["body"])
    doc["effective_from"] = later_day
    doc["source"] = {loc: f"test notice ({loc})" for loc in LOCALES}
    doc["checklists"]["marriage"]["mainland"] = ["id_card", "declaration"]
    assert (await client.post(url, json=doc, headers=staff["admin"])).status_code == 403
    added = await client.post(url, json=doc, headers=staff["root"])
    assert added.status_code == 201, added.text
    assert (
        (await client.post(url, json=doc, headers=staff["root"]))
        .json()["type"]
        .endswith("/rule-set-exists")
    )
    past = doc | {"effective_from": "2025-01-01"}
    resp = await client.post(url, json=past, headers=staff["root"])
    assert resp.status_code == 422 and resp.json()["field"] == "effective_from"
    bad = doc | {"effective_from": "2099-01-01", "min_age": {"marriage": {"male": "x"}}}
    resp = await client.post(url, json=bad, headers=staff["root"])
    assert resp.status_code == 422 and resp.json()["field"] == "min_age.marriage.male"
    audit = await AuditLog.select().where(AuditLog.action == "rules.add_version")
    assert len(audit) == 1 and audit[0]["object_id"] == f"CN-GD:{later_day}"

    listed = (await client.get(url, headers=staff["admin"])).json()
    assert [v["origin"] for v in listed["versions"]] == ["shipped", "added"]
    assert listed["in_force"] == "2025-05-10"  # the new one is for a later day
    # Appointments on that day get the new checklist; earlier ones keep the old.
    for slot, expected in ((slots[0], 3), (slots[-1], 2)):
        held = (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).json()
        view = await client.get(
            f"/api/v1/appointments/{held['reference']}",
            headers={"X-Manage-Token": held["manage_token"]},
        )
        assert len(view.json()["checklist"]["parties"][0]["documents"]) == expected, slot


OFFICES_FILE = Path(__file__).resolve().parents[1] / "config" / "offices.toml"


async def test_designated_demo_offices_come_from_the_offices_file(db: None) -> None:
    from scheduler.usecases.offices.seed import load_offices

    await load_offices(OFFICES_FILE)
    designated = await Office.select(Office.code).where(Office.designated == True)  # noqa: E712
    assert {r["code"] for r in designated} == {"GZ-YX", "SZ-FT"}


async def test_a_blackout_moves_permit_couples_only_to_designated_offices(
    client: httpx.AsyncClient, db: None
) -> None:
    """GZ-YX closes for the whole window and couples may go to another office of the
    region: the mainland couple may go to GZ-TH (created first, so tried first), the
    couple with a Hong Kong party only to SZ-FT, the other designated office."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from scheduler.usecases.offices import reschedule

    await make_office(code="GZ-TH", days_ahead=6)
    await make_office(code="GZ-YX", designated=True, days_ahead=6)
    await make_office(code="SZ-FT", designated=True, days_ahead=6)
    slots = await dated_slots(client, "GZ-YX")
    hk = with_id("hk_macau_permit", "H10293847")
    held = {}
    for name, b in (("mainland", person()), ("hk", hk)):
        resp = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"], b=b))
        assert resp.status_code == 201, resp.text
        held[name] = resp.json()
    admin = await staff_token(client, "root", role="superadmin", offices=())
    local_today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    body = {
        "offices": ["GZ-YX"],
        "start_date": local_today.isoformat(),
        "end_date": (local_today + timedelta(days=10)).isoformat(),
        "kind": "closed",
        "reason": {"zh-Hans": "场地维修", "en": "Repairs"},
        "allow_other_office": True,
    }
    declared = await client.post("/api/v1/admin/blackouts", json=body, headers=admin)
    assert declared.status_code == 202, declared.text
    for run_id in await reschedule.due_runs(datetime.now(UTC)):
        await reschedule.execute(run_id, "test", datetime.now(UTC), settings=get_settings())
    offices = {}
    for name, h in held.items():
        view = await client.get(
            f"/api/v1/appointments/{h['reference']}",
            headers={"X-Manage-Token": h["manage_token"]},
        )
        offices[name] = view.json()["office"]["code"]
    assert offices == {"mainland": "GZ-TH", "hk": "SZ-FT"}


async def test_the_booking_page_shows_the_refusals_at_the_party(
    client: httpx.AsyncClient, db: None
) -> None:
    """The pages answer the same rules in place: under age at the party's ID number,
    a party needing a designated office at its ID type, with the offices that may."""
    from tests.test_pages import filled, hidden_fields, pick_slot, post_form

    await make_office(code="GZ-TH")
    await make_office(code="GZ-YX", designated=True)
    await client.get("/")
    form = await client.get(await pick_slot(client))
    young = with_id("mainland_id", mainland(date.today() - timedelta(days=365 * 19)))
    resp = await post_form(client, "/book", filled(hidden_fields(form), person(), young))
    assert resp.status_code == 422
    error = re.search(
        r'<p class="error-text" id="f-party_b-id_number-error">([^<]+)</p>', resp.text
    )
    assert error and "当事人B" in error.group(1) and "22" in error.group(1)
    hk = with_id("hk_macau_permit", "H56473829")
    resp = await post_form(client, "/book", filled(hidden_fields(form), hk, person()))
    assert resp.status_code == 409
    error = re.search(r'<p class="error-text" id="f-party_a-id_type-error">([^<]+)</p>', resp.text)
    assert error and "GZ-YX" in error.group(1)
    await nothing_stored()


async def test_the_rules_page_is_for_admins_and_only_a_superadmin_adds(
    client: httpx.AsyncClient, db: None
) -> None:
    from scheduler.db.rule_tables import RuleSetVersion
    from tests.test_desk_pages import make_staff, sign_in
    from tests.test_desk_pages import post_form as staff_post

    await make_office(code="GZ-TH")
    assert (await client.get("/staff/admin/rules")).status_code in (302, 303)
    await make_staff("th.clerk", offices=("GZ-TH",))
    await make_staff("th.admin", role="admin", offices=("GZ-TH",))
    await sign_in(client, "th.clerk")
    assert (await client.get("/staff/admin/rules")).status_code == 403
    await sign_in(client, "th.admin")
    page = await client.get("/staff/admin/rules")
    assert page.status_code == 200 and 'id="in-force" data-date="2025-05-10"' in page.text
    assert 'id="rules-form"' not in page.text  # admins read
    doc = dict(RULES.raw) | {"effective_from": "2099-01-01"}
    refused = await staff_post(client, "/staff/admin/rules", {"document": json.dumps(doc)})
    assert refused.status_code == 403
    assert await RuleSetVersion.count() == 0
