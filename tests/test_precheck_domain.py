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
    missing_documents,
    offered,
    required_documents,
    submission_open,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def party(**changes: object) -> PartyData:
    base: dict[str, object] = {
        "nationality": "cn",
        "occupation": " 教师 ",
        "education": "bachelor",
        "marital_status": "unmarried",
        "hukou_address": "广东省广州市天河区　体育西路 1 号",
        "documents": frozenset({"id_card", "hukou_book"}),
    }
    return PartyData(**(base | changes))  # type: ignore[arg-type]


def test_documents_depend_on_service_and_id_type() -> None:
    assert required_documents("marriage", "mainland_id") == (
        "id_card",
        "hukou_book",
        "photos",
        "declaration",
    )
    # No household register outside the mainland: a no-spouse statement instead.
    assert required_documents("marriage", "passport") == (
        "id_card",
        "no_spouse_statement",
        "photos",
        "declaration",
    )
    divorce = required_documents("divorce", "mainland_id")
    assert "marriage_certificate" in divorce and "divorce_agreement" in divorce
    assert "no_spouse_statement" not in required_documents("divorce", "passport")
    assert required_documents("ceremony", "mainland_id") == ()
    assert not offered("counselling") and offered("reissue")


def test_clean_party_normalises_and_drops_what_the_service_does_not_ask() -> None:
    cleaned = clean_party("a", "marriage", "mainland_id", party())
    assert cleaned.nationality == "CN"
    assert cleaned.occupation == "教师"
    assert cleaned.hukou_address == "广东省广州市天河区 体育西路 1 号"  # full-width space folded
    reissue = clean_party("b", "reissue", "mainland_id", party(education="nonsense"))
    assert (reissue.occupation, reissue.education, reissue.marital_status) == ("", "", "")


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"nationality": "China"}, "party_a.nationality", "nationality"),
        ({"nationality": ""}, "party_a.nationality", "nationality"),
        ({"occupation": "  "}, "party_a.occupation", "required"),
        ({"occupation": "x" * 51}, "party_a.occupation", "text"),
        ({"education": "phd"}, "party_a.education", "choice"),
        ({"marital_status": "married"}, "party_a.marital_status", "choice"),
        ({"hukou_address": ""}, "party_a.hukou_address", "required"),
        ({"hukou_address": "路\x00"}, "party_a.hukou_address", "text"),
        ({"documents": frozenset({"divorce_agreement"})}, "party_a.documents", "document"),
    ],
)
def test_clean_party_refuses(changes: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(PrecheckInvalid) as caught:
        clean_party("a", "marriage", "mainland_id", party(**changes))
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_hukou_book_is_refused_for_a_passport_holder() -> None:
    with pytest.raises(PrecheckInvalid):
        clean_party("b", "marriage", "passport", party())


def test_missing_documents_in_checklist_order() -> None:
    assert missing_documents("marriage", "mainland_id", frozenset({"photos"})) == (
        "id_card",
        "hukou_book",
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
