"""ID numbers and mobile numbers: validation, normalisation and masking."""

from __future__ import annotations

import pytest

from scheduler.domain.identity import (
    ID_TYPES,
    REASONS,
    InvalidIdentity,
    mainland_id_birth_date,
    make_mainland_id,
    mask_id,
    mask_phone,
    normalize_id,
    normalize_mobile,
    valid_mainland_id,
)

# The worked example of GB 11643-1999 itself.
STANDARD_EXAMPLE = "11010519491231002X"


def reason_of(id_type: str, raw: str) -> str:
    with pytest.raises(InvalidIdentity) as caught:
        normalize_id(id_type, raw)
    return caught.value.reason


def phone_reason(raw: str, region: str = "CN") -> str:
    with pytest.raises(InvalidIdentity) as caught:
        normalize_mobile(raw, region)
    return caught.value.reason


# --- mainland ID -----------------------------------------------------------------


def test_standard_example_is_valid() -> None:
    assert normalize_id("mainland_id", STANDARD_EXAMPLE) == STANDARD_EXAMPLE


def test_make_mainland_id_reproduces_standard_check_character() -> None:
    assert make_mainland_id(STANDARD_EXAMPLE[:17]) == STANDARD_EXAMPLE


@pytest.mark.parametrize(
    ("prefix", "check"),
    [
        ("44030419900307001", "8"),  # weighted sum 224, 224 % 11 = 4 -> "8"
        ("32010219851120123", "4"),  # weighted sum 184, 184 % 11 = 8 -> "4"
        ("51010719720229002", "9"),  # weighted sum 223, 223 % 11 = 3 -> "9"
    ],
)
def test_make_mainland_id_check_characters(prefix: str, check: str) -> None:
    # Expected values worked out separately from the MOD 11-2 weights, not by the code.
    assert make_mainland_id(prefix) == prefix + check


def test_lowercase_x_spaces_and_full_width_are_normalised() -> None:
    assert normalize_id("mainland_id", " 110105 19491231 002x ") == STANDARD_EXAMPLE
    full_width = "１１０１０５１９４９１２３１００２ｘ"
    assert normalize_id("mainland_id", full_width) == STANDARD_EXAMPLE


def test_wrong_check_character_is_refused() -> None:
    assert reason_of("mainland_id", "110105194912310021") == "id-checksum"


def test_every_single_digit_typo_breaks_the_checksum() -> None:
    # MOD 11-2 detects all single-character substitutions; a typo must never pass.
    for position in range(17):
        original = STANDARD_EXAMPLE[position]
        for digit in "0123456789":
            if digit == original:
                continue
            typo = STANDARD_EXAMPLE[:position] + digit + STANDARD_EXAMPLE[position + 1 :]
            with pytest.raises(InvalidIdentity):
                valid_mainland_id(typo)


def test_swapped_adjacent_digits_break_the_checksum() -> None:
    swapped = STANDARD_EXAMPLE[:6] + "91" + STANDARD_EXAMPLE[8:]  # 1949 -> 9149
    assert reason_of("mainland_id", swapped) == "id-checksum"


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002",  # 17 characters
        "11010519491231002XX",  # 19 characters
        "1101051949123100X2",  # X not in last place
        "A1010519491231002X",  # letter
        "",
    ],
)
def test_malformed_mainland_ids(raw: str) -> None:
    assert reason_of("mainland_id", raw) == "id-format"


@pytest.mark.parametrize("birth", ["20230230", "19991301", "19990100", "18991231"])
def test_impossible_birth_date_with_correct_checksum(birth: str) -> None:
    number = make_mainland_id("110105" + birth + "002")
    assert reason_of("mainland_id", number) == "id-birthdate"


def test_leap_day_birth_date_is_accepted() -> None:
    number = make_mainland_id("11010520000229002")
    assert normalize_id("mainland_id", number) == number
    assert mainland_id_birth_date(number).isoformat() == "2000-02-29"


@pytest.mark.parametrize("prefix", ["81", "82", "83"])
def test_hk_macau_taiwan_residence_permits_accepted_as_mainland_id(prefix: str) -> None:
    number = make_mainland_id(prefix + "000019900101123")
    assert normalize_id("mainland_id", number) == number


@pytest.mark.parametrize("prefix", ["1101051949123100", "110105194912310021", "1101051949123100a"])
def test_make_mainland_id_rejects_bad_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        make_mainland_id(prefix)
    assert caught.value.reason == "id-format"


# --- permits and passports ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("H12345678", "H12345678"),
        ("M1234567890", "M1234567890"),
        ("h 1234 5678", "H12345678"),
    ],
)
def test_hk_macau_permit_accepted(raw: str, expected: str) -> None:
    assert normalize_id("hk_macau_permit", raw) == expected


@pytest.mark.parametrize(
    "raw", ["X12345678", "H1234567", "H123456789", "H123456789012", "12345678", "HH2345678"]
)
def test_hk_macau_permit_refused(raw: str) -> None:
    assert reason_of("hk_macau_permit", raw) == "id-format"


@pytest.mark.parametrize("raw", ["12345678", "1234567890", " 1234 5678 "])
def test_taiwan_permit_accepted(raw: str) -> None:
    assert normalize_id("taiwan_permit", raw) == raw.replace(" ", "")


@pytest.mark.parametrize("raw", ["1234567", "123456789", "12345678901", "1234567A", "T12345678"])
def test_taiwan_permit_refused(raw: str) -> None:
    assert reason_of("taiwan_permit", raw) == "id-format"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("E12345678", "E12345678"), ("ab123", "AB123"), ("X" * 20, "X" * 20)],
)
def test_passport_accepted(raw: str, expected: str) -> None:
    assert normalize_id("passport", raw) == expected


@pytest.mark.parametrize("raw", ["1234", "X" * 21, "E1234-567", "E1234567/", "护照12345"])
def test_passport_refused(raw: str) -> None:
    assert reason_of("passport", raw) == "id-format"


def test_unknown_id_type() -> None:
    assert "driving_licence" not in ID_TYPES
    assert reason_of("driving_licence", "E12345678") == "id-type"


def test_every_id_type_is_handled() -> None:
    samples = {
        "mainland_id": STANDARD_EXAMPLE,
        "hk_macau_permit": "H12345678",
        "taiwan_permit": "12345678",
        "passport": "E12345678",
    }
    assert set(samples) == set(ID_TYPES)
    for id_type, number in samples.items():
        assert normalize_id(id_type, number) == number


def test_invalid_identity_is_a_value_error_with_known_reason() -> None:
    with pytest.raises(ValueError, match="check character") as caught:
        normalize_id("mainland_id", "110105194912310021")
    assert isinstance(caught.value, InvalidIdentity)
    assert caught.value.reason in REASONS


# --- ID masks ------------------------------------------------------------------------


def test_mask_mainland_id() -> None:
    assert mask_id(STANDARD_EXAMPLE) == "110***********002X"


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("H12345678", "*******78"),
        ("M1234567890", "*********90"),
        ("12345678", "******78"),
        ("AB123", "***23"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_short_numbers_keeps_last_two(number: str, masked: str) -> None:
    assert mask_id(number) == masked


def test_mask_never_reveals_more_than_half() -> None:
    for length in range(0, 21):
        number = "9" * length
        shown = sum(1 for ch in mask_id(number) if ch != "*")
        assert len(mask_id(number)) == length
        assert shown * 2 <= length


# --- mobile numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["13812345678", "+86 138 1234 5678", "138-1234-5678", "008613812345678"]
)
def test_mainland_mobile_normalised_to_e164(raw: str) -> None:
    assert normalize_mobile(raw) == "+8613812345678"


def test_hk_mobile_accepted() -> None:
    assert normalize_mobile("+852 9123 4567") == "+85291234567"


def test_default_region_applies_to_national_numbers() -> None:
    assert normalize_mobile("9123 4567", default_region="HK") == "+85291234567"


@pytest.mark.parametrize(
    "raw",
    [
        "010-12345678",  # Beijing landline
        "+852 2123 4567",  # Hong Kong landline
        "+86 400 123 4567",  # shared-cost service number
    ],
)
def test_numbers_that_cannot_receive_sms_are_refused(raw: str) -> None:
    assert phone_reason(raw) == "phone-not-mobile"


@pytest.mark.parametrize("raw", ["abc", "", "12345", "+86 138 1234 567", "1381234567890"])
def test_garbage_phone_numbers_are_invalid(raw: str) -> None:
    assert phone_reason(raw) == "phone-invalid"


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+8613812345678", "+86138****5678"),
        ("+85291234567", "+852****4567"),
        ("+886912345678", "+8869****5678"),
    ],
)
def test_mask_phone(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked


def test_mask_phone_tolerates_garbage() -> None:
    masked = mask_phone("not a number 123")
    assert "123" not in masked
