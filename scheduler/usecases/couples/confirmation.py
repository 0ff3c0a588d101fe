"""The one confirmation path of a couple, for bookings, lottery applications and
waiting-list entries alike: the partners are ``party`` rows of one owner, each is
texted a code, each enters it; an entered code first spends an attempt
(scheduler/usecases/couples/attempts.py), then is compared, and a right one marks the
partner confirmed. What the owner then does (a booking takes its seat, an
application enters the draw, an entry takes its place in the queue) stays with the
caller. Call the writers inside the caller's write transaction.

Each owner kind keeps the code-hash formula it has always had (``Owner.code_hash``),
so the hashes of codes already texted, and the right codes of partners already
confirmed (issue 13.5 answers them), stay valid across issue 15's merge of the tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from scheduler.db import statements
from scheduler.db.records import PartyRecord, party_of
from scheduler.db.statements import Statement
from scheduler.db.tables import Party
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import keyed_hash
from scheduler.notify import outbox
from scheduler.notify.terms import SmsTerms
from scheduler.settings import Settings
from scheduler.usecases.couples.attempts import Checked, check_code, refusal

OwnerKind = Literal["appointment", "application", "entry"]
# Per owner kind: the purpose and message prefix of its code hash (as stored since
# each kind began; never change one, or every code already sent stops matching).
_CODE_KEYS: dict[str, tuple[str, str]] = {
    "appointment": ("code", ""),
    "application": ("lottery-code", ""),
    "entry": ("code", "waitlist:"),
}


@dataclass(frozen=True)
class Owner:
    """Whose partners: an appointment, a lottery application or a waiting-list entry."""

    kind: OwnerKind
    id: int

    @property
    def column(self) -> Any:
        return getattr(Party, self.kind)

    def code_hash(self, secret_key: str, role: str, code: str) -> str:
        purpose, prefix = _CODE_KEYS[self.kind]
        return keyed_hash(secret_key, purpose, f"{prefix}{self.id}:{role}:{code.strip()}")


@dataclass(frozen=True)
class CodeText:
    """The SMS that carries each partner's code; ``payload`` follows code and reference."""

    template: str
    key: Callable[[str], str]  # role -> outbox key (one text per party and code)
    locale: str
    payload: dict[str, Any]
    validity_seconds: int


def party_values(owner: Owner, role: str, person: dict[str, str], code_hash: str) -> dict[str, Any]:
    """A ``party`` row by column name: ``person`` has name, id_type, phone and the ID's
    stored forms (id_sealed, id_masked, id_hash, number_hash); attempts start at 0."""
    return {
        "appointment": None,
        "application": None,
        "entry": None,
        owner.kind: owner.id,
        "role": role,
        "name": person["name"],
        "id_type": person["id_type"],
        "id_sealed": person["id_sealed"],
        "id_masked": person["id_masked"],
        "id_hash": person["id_hash"],
        "number_hash": person.get("number_hash", ""),
        "phone": person["phone"],
        "code_hash": code_hash,
        "code_attempts": 0,
    }


_PARTY_COLUMNS = tuple(party_values(Owner("entry", 0), "a", defaultdict(str), ""))


def insert_statement(
    owner: Owner, people: dict[str, dict[str, str]], codes: dict[str, str], secret_key: str
) -> Statement:
    """The owner's partners (role -> person, see ``party_values``), each with the hash
    of the code texted to them; the statement returns their ids and roles."""
    values = [
        party_values(owner, role, p, owner.code_hash(secret_key, role, codes[role]))
        for role, p in people.items()
    ]
    rows = [[row[c] for c in _PARTY_COLUMNS] for row in values]
    return statements.insert("party", _PARTY_COLUMNS, rows, "RETURNING id, role")


async def load(owner: Owner) -> list[PartyRecord]:
    """The owner's partners, ``a`` first."""
    rows = await Party.select().where(owner.column == owner.id).order_by(Party.role)
    return [party_of(r) for r in rows]


def code_texts(
    people: Iterable[tuple[str, str]],
    codes: dict[str, str],
    text: CodeText,
    *,
    reference: str,
    now: datetime,
    terms: SmsTerms,
    appointment_id: int | None = None,
) -> Statement:
    """Each partner (role, phone) their code, urgent: it is useless late (under the
    policy store's SMS ``terms``): the outbox insert."""
    return outbox.insert_statement(
        [
            outbox.new_message(
                key=text.key(role),
                to_phone=phone,
                template=text.template,
                locale=text.locale,
                payload={"code": codes[role], "reference": reference, **text.payload},
                now=now,
                terms=terms,
                urgent=True,
                appointment_id=appointment_id,
                validity_seconds=text.validity_seconds,
            )
            for role, phone in people
        ]
    )


async def start(
    owner: Owner,
    people: dict[str, dict[str, str]],
    codes: dict[str, str],
    text: CodeText,
    *,
    reference: str,
    now: datetime,
    secret_key: str,
    terms: SmsTerms,
    before: Sequence[Statement] = (),
) -> dict[str, int]:
    """The partners stored with the hashes of their codes, and each texted theirs,
    in one round trip with the caller's ``before`` statements (inserts that need
    nothing of these rows). Returns the partners' ids by role."""
    appointment_id = owner.id if owner.kind == "appointment" else None
    texts = code_texts(
        [(role, p["phone"]) for role, p in people.items()],
        codes,
        text,
        reference=reference,
        now=now,
        terms=terms,
        appointment_id=appointment_id,
    )
    parties = insert_statement(owner, people, codes, secret_key)
    rows = await statements.fetch_all([*before, texts, parties])
    return {r["role"]: r["id"] for r in rows}


async def replace_code(owner: Owner, party: PartyRecord, code: str, secret_key: str) -> None:
    """A code texted again replaces the old one; the attempts spent stay spent."""
    await Party.update({Party.code_hash: owner.code_hash(secret_key, party.role, code)}).where(
        Party.id == party.id
    )


async def check(owner: Owner, party: PartyRecord, code: str, settings: Settings) -> Checked:
    """Spend one of the partner's attempts, then compare the code entered."""
    entered = owner.code_hash(settings.secret_key, party.role, code)
    return await check_code(party, entered, settings.code_max_attempts)


async def mark_confirmed(party: PartyRecord, now: datetime) -> None:
    await Party.update({Party.confirmed_at: now}).where(Party.id == party.id)


async def enter_code(
    owner: Owner,
    party: PartyRecord,
    parties: Sequence[PartyRecord],
    code: str,
    *,
    now: datetime,
    settings: Settings,
) -> tuple[DomainError | None, bool]:
    """A pending partner enters a code. Returns the error to raise after commit (the
    spent attempt is kept) and whether every partner has now confirmed."""
    checked = await check(owner, party, code, settings)
    if not checked.right:
        return refusal(checked), False
    await mark_confirmed(party, now)
    return None, all(p.confirmed_at is not None for p in parties if p.id != party.id)


async def proves_code(owner: Owner, party: PartyRecord, code: str, settings: Settings) -> bool:
    """Whether a partner who is not pending (already confirmed, or the owner moved on)
    sent their right code, an attempt spent as for a pending one. Without it the
    caller answers as for an unknown reference (issue 13.5)."""
    return (await check(owner, party, code, settings)).right
