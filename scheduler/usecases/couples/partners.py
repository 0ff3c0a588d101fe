"""A partner as a form or an API body gives them, and their cleaning: the one input of a
couple for bookings, lottery applications and waiting-list entries."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.domain.identity import (
    InvalidIdentity,
    normalize_id,
    normalize_mobile,
    refuse_mainland_as_passport,
)
from scheduler.kernel.errors import DomainError

PARTY_ROLES = ("a", "b")


@dataclass(frozen=True)
class PartyInput:
    name: str
    id_type: str
    id_number: str
    phone: str


def clean_party(role: str, party: PartyInput) -> PartyInput:
    """Normalise one party or raise invalid-input naming each bad field."""
    cleaned, errors = party_problems(role, party)
    if errors:
        raise DomainError.all_of(errors)
    assert cleaned is not None
    return cleaned


def party_problems(role: str, party: PartyInput) -> tuple[PartyInput | None, list[DomainError]]:
    """The party normalised, or every field's problem (a form shows them all at once)."""
    errors: list[DomainError] = []
    name = " ".join(party.name.split())
    # Control characters (NUL: PostgreSQL refuses it in text) are never part of a name.
    if not 1 <= len(name) <= 100 or not name.isprintable():
        errors.append(DomainError("invalid-input", field=f"party_{role}.name", reason="name"))
    id_number = phone = ""
    try:
        id_number = normalize_id(party.id_type, party.id_number)
    except InvalidIdentity as exc:
        field = f"party_{role}.id_number"
        errors.append(DomainError("invalid-input", field=field, reason=exc.reason))
    try:
        phone = normalize_mobile(party.phone)
    except InvalidIdentity as exc:
        field = f"party_{role}.phone"
        errors.append(DomainError("invalid-input", field=field, reason=exc.reason))
    if errors:
        return None, errors
    return PartyInput(name=name, id_type=party.id_type, id_number=id_number, phone=phone), []


def refuse_passports(*parties: PartyInput) -> None:
    """422 naming the first party whose passport number is a resident ID number."""
    for role, party in zip(PARTY_ROLES, parties, strict=True):
        try:
            refuse_mainland_as_passport(party.id_type, party.id_number)
        except InvalidIdentity as exc:
            raise DomainError(
                "invalid-input", field=f"party_{role}.id_number", reason=exc.reason
            ) from exc
