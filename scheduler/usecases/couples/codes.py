"""Two-party verification shared by lottery applications (scheduler/usecases/lottery/apply.py)
and the waiting list (scheduler/usecases/waitlist/entries.py): both partners named, each texted a
code, each entering it; the owner row (application, entry) moves on when both have.

Each caller keeps its own code hash (the stored hashes of codes already sent must
stay valid) and its own statuses; what is alike lives here. Call the writers inside
the caller's write transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from piccolo.table import Table

from scheduler.db.lottery_tables import LotteryParty
from scheduler.db.waitlist_tables import WaitlistParty
from scheduler.domain.identity import mask_phone
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import new_code
from scheduler.notify import outbox
from scheduler.notify.terms import SmsTerms
from scheduler.settings import Settings
from scheduler.usecases.booking.lifecycle import PartyInput, clean_party, refuse_passports
from scheduler.usecases.couples.attempts import check_code, refusal
from scheduler.usecases.policy import policies
from scheduler.usecases.privacy.personal_data import id_columns, number_hash

ROLES = ("a", "b")
Parties = tuple[tuple[str, PartyInput], tuple[str, PartyInput]]
PartyTable = type[LotteryParty] | type[WaitlistParty]


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


def new_codes() -> dict[str, str]:
    return {role: new_code() for role in ROLES}


async def insert_parties(
    table: type[Table],
    owner: dict[str, int],
    parties: Parties,
    ids: dict[str, dict[str, str]],
    code_hashes: dict[str, str],
) -> None:
    """One row per party; ``owner`` names the owner column and its id."""
    rows: list[dict[str, Any]] = [
        {
            **owner,
            "role": role,
            "name": p.name,
            "id_type": p.id_type,
            "id_sealed": ids[role]["id_sealed"],
            "id_masked": ids[role]["id_masked"],
            "id_hash": ids[role]["id_hash"],
            "number_hash": ids[role]["number_hash"],
            "phone": p.phone,
            "code_hash": code_hashes[role],
        }
        for role, p in parties
    ]
    await table.insert(*[table(**row) for row in rows])


async def text_codes(
    key: str,
    parties: Parties,
    codes: dict[str, str],
    *,
    template: str,
    locale: str,
    reference: str,
    minutes: int,
    now: datetime,
    terms: SmsTerms,
) -> None:
    """Each party's code, urgent, valid as long as the codes are (at least a minute)."""
    for role, p in parties:
        await outbox.enqueue(
            key=f"{key}:code:{role}",
            to_phone=p.phone,
            template=template,
            locale=locale,
            payload={"code": codes[role], "reference": reference, "minutes": minutes},
            now=now,
            terms=terms,
            urgent=True,
            validity_seconds=max(60, minutes * 60),
        )


def check_role(role: str) -> None:
    if role not in ROLES:
        raise DomainError("invalid-input", field="party", reason="party")


async def enter_code(
    table: PartyTable,
    party: dict[str, Any],
    parties: Sequence[dict[str, Any]],
    code_hash: str,
    *,
    now: datetime,
    settings: Settings,
) -> tuple[DomainError | None, bool]:
    """A pending party enters a code (``code_hash`` is its hash). Returns the error to
    raise after commit (the spent attempt is kept) and whether every party has now
    confirmed. The attempt is counted before the comparison
    (scheduler/usecases/couples/attempts.py)."""
    checked = await check_code(table, party, code_hash, settings.code_max_attempts)
    if not checked.right:
        return refusal(checked), False
    await table.update({table.confirmed_at: now}).where(table.id == party["id"])
    return None, all(p["confirmed_at"] is not None for p in parties if p["id"] != party["id"])


async def proves_code(
    table: PartyTable, party: dict[str, Any], code_hash: str, settings: Settings
) -> bool:
    """Whether a party who is not pending (already confirmed, or the entry moved on)
    sent their right code, an attempt spent as for a pending one. Without it the
    caller answers as for an unknown reference (issue 13.5)."""
    return (await check_code(table, party, code_hash, settings.code_max_attempts)).right


def party_views(parties: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parties as their couple sees them: ID number and phone masked."""
    return [
        {
            "role": p["role"],
            "name": p["name"],
            "id_type": p["id_type"],
            "id_number_masked": p["id_masked"],
            "phone_masked": mask_phone(p["phone"]),
            "confirmed": p["confirmed_at"] is not None,
        }
        for p in parties
    ]
