"""Writing a held appointment: the rows a booking, a waiting-list offer and a
lottery award all write the same way.

A hold is an ``Appointment`` in ``pending_confirmation`` with its ``hold_expires_at``,
``IdClaim`` rows for one-active-per-ID services, one ``Party`` per partner (ID
sealed, masked and hashed, scheduler/usecases/privacy/personal_data.py) with the hash of the code
texted to them, a ``held`` event and the code SMS. The callers keep what differs:
who acts, the token, the expiry, the SMS template, key and payload; and they take
the seats themselves (booking and offers last, as the counters are the contended
rows; the lottery in bulk). The row builders are plain so the lottery can insert
them set-based; ``write_held`` is the row-by-row path of booking and offers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from scheduler.db import statements
from scheduler.db.engine import is_unique_violation
from scheduler.db.records import PartyRecord
from scheduler.db.statements import Statement
from scheduler.db.tables import Appointment
from scheduler.kernel.errors import DomainError
from scheduler.notify.terms import SmsTerms
from scheduler.usecases.couples import confirmation
from scheduler.usecases.couples.confirmation import CodeText

# Services where one person may hold only one active appointment across all offices.
ONE_ACTIVE_PER_ID = frozenset({"marriage"})
PENDING = "pending_confirmation"
# Column order of ``party_values`` and ``held_event_values``, for set-based inserts.
PARTY_COLUMNS = (
    "appointment",
    "role",
    "name",
    "id_type",
    "id_sealed",
    "id_masked",
    "id_hash",
    "number_hash",
    "phone",
    "code_hash",
    "code_attempts",
)
EVENT_COLUMNS = ("appointment", "kind", "from_slot", "to_slot", "actor", "at")


@dataclass(frozen=True)
class HeldParty:
    """One partner as stored: the ID only in its sealed, masked and hashed forms."""

    role: str
    name: str
    id_type: str
    phone: str
    id_sealed: str
    id_masked: str
    id_hash: str
    # The number's hash whatever its type ("" where unknown: the typed claim only).
    number_hash: str = ""

    @classmethod
    def from_party(cls, party: PartyRecord) -> HeldParty:
        """From a stored party of a list entry or lottery application, copied as is."""
        return cls(
            role=party.role,
            name=party.name,
            id_type=party.id_type,
            phone=party.phone,
            id_sealed=party.id_sealed,
            id_masked=party.id_masked,
            id_hash=party.id_hash,
            number_hash=party.number_hash,
        )

    @property
    def claim_hashes(self) -> list[str]:
        """The hashes this person's claims are made of (``id_claims``): typed, and
        whatever the type when known, as a booking claims (issue 13.7)."""
        return [self.id_hash] + (["any:" + self.number_hash] if self.number_hash else [])

    def stored(self, party_id: int) -> PartyRecord:
        """As the store reads it back just after ``write_held`` (no attempt, unconfirmed)."""
        return PartyRecord(
            id=party_id,
            role=self.role,
            name=self.name,
            id_type=self.id_type,
            id_sealed=self.id_sealed,
            id_masked=self.id_masked,
            id_hash=self.id_hash,
            number_hash=self.number_hash,
            phone=self.phone,
            code_attempts=0,
            confirmed_at=None,
        )


def appointment_row(
    *,
    reference: str,
    manage_token_hash: str,
    office_id: int,
    slot_id: int,
    service: str,
    locale: str,
    people: int,
    expires: datetime,
    now: datetime,
) -> Appointment:
    return Appointment(
        reference=reference,
        manage_token_hash=manage_token_hash,
        office=office_id,
        slot=slot_id,
        service=service,
        status=PENDING,
        locale=locale,
        people=people,
        hold_expires_at=expires,
        created_at=now,
    )


def id_claims(service: str, id_hashes: Iterable[str]) -> list[str]:
    """The claims a hold of ``service`` takes, in one order for everybody (no
    deadlock between twin holds); none for services without the one-active rule."""
    if service not in ONE_ACTIVE_PER_ID:
        return []
    return sorted(f"{service}:{h}" for h in id_hashes)


def party_values(
    appointment_id: int, party: HeldParty, code: str, secret_key: str
) -> dict[str, Any]:
    """A ``party`` row of the appointment by column name (code_attempts starts at 0)."""
    owner = confirmation.Owner("appointment", appointment_id)
    return confirmation.party_values(
        owner, party.role, asdict(party), owner.code_hash(secret_key, party.role, code)
    )


def held_event_values(
    appointment_id: int, slot_id: int, actor: str, now: datetime
) -> dict[str, Any]:
    return {
        "appointment": appointment_id,
        "kind": "held",
        "from_slot": None,
        "to_slot": slot_id,
        "actor": actor,
        "at": now,
    }


def code_payload(code: str, reference: str, extra: dict[str, Any]) -> dict[str, Any]:
    """As ``confirmation.code_texts`` writes it (the lottery draw writes set-based)."""
    return {"code": code, "reference": reference, **extra}


_APPOINTMENT_COLUMNS = (
    "reference",
    "manage_token_hash",
    "office",
    "slot",
    "service",
    "status",
    "locale",
    "people",
    "hold_expires_at",
    "created_at",
)


async def insert_appointment(row: Appointment) -> int:
    values = [getattr(row, column) for column in _APPOINTMENT_COLUMNS]
    inserted = await statements.fetch_all(
        [statements.insert("appointment", _APPOINTMENT_COLUMNS, [values], "RETURNING id")]
    )
    appointment_id: int = inserted[0]["id"]
    return appointment_id


def claims_statement(appointment_id: int, claims: list[str]) -> Statement:
    return statements.insert(
        "id_claim", ("claim", "appointment"), [(c, appointment_id) for c in claims]
    )


async def write_held(
    appointment_id: int,
    *,
    slot_id: int,
    claims: list[str],
    parties: Sequence[HeldParty],
    codes: dict[str, str],
    actor: str,
    text: CodeText,
    reference: str,
    now: datetime,
    secret_key: str,
    terms: SmsTerms,
    also: Sequence[Statement] = (),
) -> dict[str, int]:
    """Everything of a hold after its appointment row, before the seats: ID
    claims, parties, the ``held`` event and a code SMS per party (under ``terms``),
    with the caller's ``also`` inserts, in one round trip. In the caller's
    transaction. Returns the parties' ids by role. A claim someone else holds (they
    booked a moment ago): ``already-booked``."""
    event = held_event_values(appointment_id, slot_id, actor, now)
    before = [
        statements.insert("appointment_event", EVENT_COLUMNS, [[event[c] for c in EVENT_COLUMNS]]),
        *also,
    ]
    if claims:
        before.insert(0, claims_statement(appointment_id, claims))
    owner = confirmation.Owner("appointment", appointment_id)
    people = {p.role: asdict(p) for p in parties}
    try:
        return await confirmation.start(
            owner,
            people,
            codes,
            text,
            reference=reference,
            now=now,
            secret_key=secret_key,
            terms=terms,
            before=before,
        )
    except Exception as exc:
        # The other rows are new (a fresh appointment id, outbox keys skip on conflict):
        # a unique violation here is an ID claim.
        if claims and is_unique_violation(exc):
            raise DomainError("already-booked") from exc
        raise
