"""Pre-check rules without a database: documents per service and ID type, data
validation, the clerk's note, the submission deadline and status after a submit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.domain.precheck import (
    PartyData,
    PrecheckInvalid,
    after_submit,
    clean_note,
    clean_party,
    countries,
    missing_documents,
    offered,
    required_documents,
    submission_open,
)
from scheduler.domain.rules import in_force
from scheduler.usecases.policy.rules import shipped

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = in_force(shipped(), "CN-GD", date(2026, 12, 3))  # the 2025-05-10 set


def party(**changes: object) -> PartyData:
    base: dict[str, object] = {
        "nationality": "cn",
        "occupation": " 教师 ",
        "education": "bachelor",
        "marital_status": "unmarried",
        "hukou_address": "广东省广州市天河区　体育西路 1 号",
        "documents": frozenset({"id_card", "declaration"}),
    }
    return PartyData(**(base | changes))  # type: ignore[arg-type]


def test_documents_depend_on_service_and_party_kind() -> None:
    # Regulations as revised 2025: ID card and signed declaration, no household register.
    assert required_documents(RULES, "marriage", "mainland") == ("id_card", "declaration", "photos")
    assert required_documents(RULES, "marriage", "hk_macau") == (
        "hk_macau_permit",
        "hk_macau_id",
        "notarised_declaration",
        "photos",
    )
    assert required_documents(RULES, "marriage", "foreign")[0] == "passport"
    assert required_documents(RULES, "divorce", "mainland") == (
        "id_card",
        "marriage_certificate",
        "divorce_agreement",
    )
    assert required_documents(RULES, "ceremony", "mainland") == ()  # no pre-check
    assert not offered(RULES, "counselling") and offered(RULES, "reissue")


def test_clean_party_normalises_and_drops_what_the_rule_set_does_not_ask() -> None:
    cleaned = clean_party("a", "marriage", "mainland", party(), RULES)
    assert cleaned.nationality == "CN"
    assert cleaned.occupation == "教师"
    assert cleaned.hukou_address == ""  # no longer asked: not stored
    assert (cleaned.birth_date, cleaned.sex) == (None, "")  # read from the ID card
    reissue = clean_party(
        "b", "reissue", "mainland", party(education="nonsense", documents=frozenset()), RULES
    )
    assert (reissue.occupation, reissue.education, reissue.marital_status) == ("", "", "")


def test_a_permit_holder_gives_birth_date_and_sex() -> None:
    docs = frozenset({"hk_macau_permit"})
    cleaned = clean_party(
        "b", "marriage", "hk_macau", party(documents=docs, sex="female"), RULES, "2000-02-29"
    )
    assert (cleaned.birth_date, cleaned.sex) == (date(2000, 2, 29), "female")
    for raw, sex, field in [("2001-02-29", "female", "birth_date"), ("", "female", "birth_date")]:
        with pytest.raises(PrecheckInvalid) as caught:
            clean_party("b", "marriage", "hk_macau", party(documents=docs, sex=sex), RULES, raw)
        assert caught.value.field == f"party_b.{field}"
    with pytest.raises(PrecheckInvalid) as caught:
        clean_party(
            "b", "marriage", "hk_macau", party(documents=docs, sex="x"), RULES, "2000-01-01"
        )
    assert caught.value.field == "party_b.sex"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"nationality": "China"}, "party_a.nationality", "nationality"),
        ({"nationality": ""}, "party_a.nationality", "nationality"),
        ({"nationality": "XX"}, "party_a.nationality", "nationality"),  # not an ISO code
        ({"occupation": "  "}, "party_a.occupation", "required"),
        ({"occupation": "x" * 51}, "party_a.occupation", "text"),
        ({"education": "phd"}, "party_a.education", "choice"),
        ({"marital_status": "married"}, "party_a.marital_status", "choice"),
        ({"documents": frozenset({"divorce_agreement"})}, "party_a.documents", "document"),
        ({"documents": frozenset({"hukou_book"})}, "party_a.documents", "document"),
    ],
)
def test_clean_party_refuses(changes: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(PrecheckInvalid) as caught:
        clean_party("a", "marriage", "mainland", party(**changes), RULES)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_nationality_choices_cover_iso_and_name_hk_macau_taiwan() -> None:
    codes = [c["code"] for c in countries()]
    assert codes[:4] == ["CN", "HK", "MO", "TW"] and len(set(codes)) == len(codes) >= 249
    for c in countries():
        assert all(c[loc].strip() for loc in ("zh-Hans", "zh-Hant", "en")), c


def test_missing_documents_in_checklist_order() -> None:
    assert missing_documents(RULES, "marriage", "mainland", frozenset({"photos"})) == (
        "id_card",
        "declaration",
    )


def test_note_required_for_a_correction_only() -> None:
    assert clean_note("approved", "") == ""
    assert clean_note("needs_correction", "  请补 3 张合照 \r\n 谢谢 ") == "请补 3 张合照\n谢谢"
    for decision, note, reason in [
        ("needs_correction", "   ", "note-required"),
        ("needs_correction", "x" * 501, "text"),
        ("approved", "a\x07b", "text"),
        ("rejected", "why", "choice"),
    ]:
        with pytest.raises(PrecheckInvalid) as caught:
            clean_note(decision, note)
        assert caught.value.reason == reason


def test_submission_closes_at_the_offices_midnight_before_the_day() -> None:
    day = date(2027, 2, 14)
    # 23:59 on the 13th in Shanghai is 15:59 UTC; midnight is 16:00 UTC.
    assert submission_open(day, datetime(2027, 2, 13, 15, 59, tzinfo=UTC), SHANGHAI)
    assert not submission_open(day, datetime(2027, 2, 13, 16, 0, tzinfo=UTC), SHANGHAI)
    assert not submission_open(day, datetime(2027, 2, 15, 1, 0, tzinfo=UTC), SHANGHAI)


@pytest.mark.parametrize(
    ("current", "unchanged", "expected"),
    [
        ("approved", True, "approved"),
        ("approved", False, "submitted"),
        ("needs_correction", True, "submitted"),
        ("needs_correction", False, "submitted"),
        ("submitted", False, "submitted"),
    ],
)
def test_status_after_a_submission(current: str, unchanged: bool, expected: str) -> None:
    assert after_submit(current, unchanged) == expected
