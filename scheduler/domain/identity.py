"""Identity documents and mobile numbers: validation, normalisation and masking.

Every failure raises :class:`InvalidIdentity` whose ``reason`` is a short, stable
slug (see :data:`REASONS`); callers use it as a translation key for the message
shown to the couple, so slugs must never be renamed casually.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import phonenumbers

ID_TYPES = ("mainland_id", "hk_macau_permit", "taiwan_permit", "passport")

# Every slug InvalidIdentity.reason can take; kept in one place so the caller can
# check that each one has a translated message.
REASONS = (
    "id-type",
    "id-format",
    "id-checksum",
    "id-birthdate",
    "id-passport-is-mainland",
    "phone-invalid",
    "phone-not-mobile",
)

# GB 11643-1999 (ISO 7064 MOD 11-2): weight of each of the first 17 digits and the
# check character for each remainder.
_MAINLAND_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_MAINLAND_CHECK = "10X98765432"

# Explicit [0-9] rather than \d: \d also matches Arabic-Indic and other Unicode digits.
_MAINLAND_RE = re.compile(r"[0-9]{17}[0-9X]")
_HK_MACAU_RE = re.compile(r"[HM](?:[0-9]{8}|[0-9]{10})")
_TAIWAN_RE = re.compile(r"[0-9]{8}(?:[0-9]{2})?")
_PASSPORT_RE = re.compile(r"[A-Z0-9]{5,20}")

_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


class InvalidIdentity(ValueError):
    """An ID number or phone number was refused; ``reason`` is a slug from REASONS."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason: str = reason


def _clean(raw: str) -> str:
    # NFKC first: Chinese input methods often produce full-width digits and letters
    # (１１０１０５…Ｘ) and full-width spaces, which are the same number to a person.
    folded = unicodedata.normalize("NFKC", raw)
    return "".join(folded.split()).upper()


def _mainland_check_char(first17: str) -> str:
    total = sum(
        int(digit) * weight for digit, weight in zip(first17, _MAINLAND_WEIGHTS, strict=True)
    )
    return _MAINLAND_CHECK[total % 11]


def make_mainland_id(prefix17: str) -> str:
    """Append the check character to 17 digits (for tests and demo data)."""
    if len(prefix17) != 17 or not prefix17.isascii() or not prefix17.isdigit():
        raise InvalidIdentity("id-format", "a mainland ID prefix is exactly 17 digits")
    return prefix17 + _mainland_check_char(prefix17)


def mainland_id_birth_date(number: str) -> date:
    """Birth date encoded in positions 7-14 of a (normalised) 18-character mainland ID."""
    digits = number[6:14]
    try:
        born = date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError as exc:
        raise InvalidIdentity("id-birthdate", f"no such birth date: {digits}") from exc
    # Nobody alive to marry was born before 1900; an earlier year is a typo.
    if born.year < 1900:
        raise InvalidIdentity("id-birthdate", f"birth year before 1900: {digits}")
    return born


def valid_mainland_id(number: str) -> str:
    """Normalise and validate an 18-character resident ID; return it or raise.

    Residence permits for Hong Kong, Macau and Taiwan residents (prefixes 81, 82,
    83) share the format and checksum, so they pass here too. The region code is
    deliberately not checked against a list: codes are renamed and merged over
    time, and the checksum already catches almost every typo.
    """
    cleaned = _clean(number)
    if not _MAINLAND_RE.fullmatch(cleaned):
        raise InvalidIdentity("id-format", "a mainland ID is 17 digits followed by a digit or X")
    # Checksum before birth date: a single mistyped digit is the usual cause, and
    # "check the number" is the more helpful message for it.
    if _mainland_check_char(cleaned[:17]) != cleaned[17]:
        raise InvalidIdentity("id-checksum", "the check character does not match")
    mainland_id_birth_date(cleaned)
    return cleaned


def normalize_id(id_type: str, raw: str) -> str:
    """Return the canonical form of an ID number of ``id_type``, or raise InvalidIdentity."""
    if id_type == "mainland_id":
        return valid_mainland_id(raw)
    cleaned = _clean(raw)
    if id_type == "hk_macau_permit":
        pattern = _HK_MACAU_RE
    elif id_type == "taiwan_permit":
        pattern = _TAIWAN_RE
    elif id_type == "passport":
        pattern = _PASSPORT_RE
    else:
        raise InvalidIdentity("id-type", f"unknown ID type: {id_type!r}")
    if not pattern.fullmatch(cleaned):
        raise InvalidIdentity("id-format", f"not a valid {id_type} number")
    return cleaned


def refuse_mainland_as_passport(id_type: str, number: str) -> None:
    """A valid resident ID number typed as a passport is refused: it would dodge the
    mainland checks, and mainland residents register with the ID card. Separate from
    ``normalize_id`` so a booking tells ``already-booked`` first when it is one."""
    if id_type != "passport":
        return
    try:
        valid_mainland_id(number)
    except InvalidIdentity:
        return
    raise InvalidIdentity("id-passport-is-mainland", "a mainland ID number, not a passport")


def _stars(count: int) -> str:
    return "*" * count


def mask_id(number: str) -> str:
    """Mask an ID number for display: ``110***********002X``.

    The first 3 and last 4 characters stay visible only when at least half the
    number is still hidden (14 characters or more); shorter permit and passport
    numbers keep only their last 2, and 4 characters or fewer are hidden entirely,
    so a mask never gives away most of a number.
    """
    length = len(number)
    if length >= 14:
        return number[:3] + _stars(length - 7) + number[-4:]
    if length > 4:
        return _stars(length - 2) + number[-2:]
    return _stars(length)


def normalize_mobile(raw: str, default_region: str = "CN") -> str:
    """Parse a mobile number (national form assumed in ``default_region``) to E.164."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity("phone-invalid", "not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidIdentity("phone-invalid", "not a valid phone number")
    # Confirmation codes go out by SMS, which landlines and 400 numbers cannot receive.
    # FIXED_LINE_OR_MOBILE is accepted because some plans (e.g. US/Canada) do not
    # distinguish the two in their numbering.
    if phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        raise InvalidIdentity("phone-not-mobile", "the number cannot receive SMS")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_region(e164: str) -> str:
    """The ISO 3166 region of an E.164 number (``CN``, ``HK``, ...; ``""`` if unknown)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.region_code_for_number(parsed) or ""


def mask_phone(e164: str) -> str:
    """Mask an E.164 number for display: ``+86138****5678``.

    Keeps the country code, up to 3 leading national digits and the last 4, but
    always hides at least 4 digits, so an 8-digit Hong Kong number shows as
    ``+852****4567`` rather than nearly in full.
    """
    try:
        parsed = phonenumbers.parse(e164, None)
        country = f"+{parsed.country_code}"
        national = phonenumbers.national_significant_number(parsed)
    except phonenumbers.NumberParseException:
        # Masking runs when rendering pages and logs: it must not fail on a
        # malformed stored value, only reveal less of it.
        country, national = "", "".join(ch for ch in e164 if ch.isdigit())
    if len(national) < 8:
        # Too short to show the last 4 and still hide 4.
        return country + _stars(len(national))
    head = min(3, len(national) - 8)
    return country + national[:head] + _stars(len(national) - 4 - head) + national[-4:]
