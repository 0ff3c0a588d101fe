"""The couple as lottery applications (scheduler/usecases/lottery/apply.py) and the
waiting list (scheduler/usecases/waitlist/entries.py) take it in: both partners
cleaned and checked, their IDs sealed, their claims, their codes, and the partners as
their couple sees them. Texting and checking the codes is the one confirmation path
(scheduler/usecases/couples/confirmation.py), shared with bookings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scheduler.db.appointments import masked_party
from scheduler.db.records import PartyRecord
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import new_code
from scheduler.settings import Settings
from scheduler.usecases.couples.confirmation import CodeText
from scheduler.usecases.couples.partners import PartyInput, clean_party, refuse_passports
from scheduler.usecases.policy import policies
from scheduler.usecases.privacy.personal_data import id_columns, number_hash

ROLES = ("a", "b")
Parties = tuple[tuple[str, PartyInput], tuple[str, PartyInput]]


def clean_couple(party_a: PartyInput, party_b: PartyInput) -> Parties:
    """Both parties normalised, as (role, party); two different people."""
    a, b = clean_party("a", party_a), clean_party("b", party_b)
    refuse_passports(a, b)
    if a.id_number == b.id_number:  # whatever the types: one person
        raise DomainError("invalid-input", field="party_b.id_number", reason="same-person")
    if a.phone == b.phone:  # each partner proves their own phone (docs/decisions.md)
        raise DomainError("invalid-input", field="party_b.phone", reason="same-phone")
    return (("a", a), ("b", b))


async def refuse_phone_regions(office_codes: list[str], parties: Parties) -> None:
    """422 if a phone is of a region these offices do not accept (issue 13.3)."""
    policies.refuse_phone_regions(
        await policies.current(), office_codes, [(role, p.phone) for role, p in parties]
    )


def sealed_ids(settings: Settings, parties: Parties) -> dict[str, dict[str, str]]:
    """Per role: the ID number sealed, masked and keyed-hashed (never kept in plaintext)."""
    return {
        role: id_columns(settings, p.id_type, p.id_number)
        | {"number_hash": number_hash(settings, p.id_number)}
        for role, p in parties
    }


def claim_hashes(ids: dict[str, dict[str, str]]) -> list[str]:
    """What an entry or application claims per person (``ids`` from ``sealed_ids``):
    the typed hash and ``any:`` + the number's hash whatever its type (issue 13.7)."""
    return sorted(h for i in ids.values() for h in (i["id_hash"], "any:" + i["number_hash"]))


def people(parties: Parties, ids: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per role, the partner as ``confirmation.insert_statement`` stores them (``ids`` from
    ``sealed_ids``)."""
    return {
        role: {"name": p.name, "id_type": p.id_type, "phone": p.phone, **ids[role]}
        for role, p in parties
    }


def code_text(key: str, template: str, locale: str, minutes: int) -> CodeText:
    """The code SMS of an application or entry: valid as long as the codes are (at
    least a minute)."""
    return CodeText(
        template=template,
        key=lambda role: f"{key}:code:{role}",
        locale=locale,
        payload={"minutes": minutes},
        validity_seconds=max(60, minutes * 60),
    )


def new_codes() -> dict[str, str]:
    return {role: new_code() for role in ROLES}


def check_role(role: str) -> None:
    if role not in ROLES:
        raise DomainError("invalid-input", field="party", reason="party")


def party_views(parties: Sequence[PartyRecord]) -> list[dict[str, Any]]:
    """The parties as their couple sees them: ID number and phone masked, as a
    booking's are."""
    return [masked_party(p) for p in parties]
