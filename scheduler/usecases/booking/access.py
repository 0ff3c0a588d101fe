"""A couple's own access to their booking (issue 14, items 5, 6 and 9).

- Each partner confirms on their own phone: reference + their phone number + their
  code (the short page /c). A wrong phone or code answers exactly as an unknown
  reference, so the page tells nobody which bookings or numbers exist; the wrong
  code still counts against that partner's attempts.
- A code can be texted again, a few times per partner and hold (``RESENDS``), on
  top of the per-phone SMS limits (scheduler/usecases/policy/ratelimits.py). The new code replaces
  the old; the attempts already spent stay spent.
- A lost manage code is recovered by reference + a partner's phone + a code texted
  to that phone; the booking then gets a new manage code (the old one stops working:
  only its hash is stored, so it cannot be shown again).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from scheduler.db.appointments import Loaded, load, load_for_owner, public_view
from scheduler.db.couple_tables import CodeResend, ManageRecovery
from scheduler.db.engine import write_transaction
from scheduler.db.records import PartyRecord
from scheduler.db.tables import Appointment, AppointmentEvent
from scheduler.domain.identity import InvalidIdentity, normalize_mobile
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import hash_token, keyed_hash, new_code, new_manage_token
from scheduler.notify import outbox
from scheduler.settings import Settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.couples import confirmation
from scheduler.usecases.couples.partners import PartyInput
from scheduler.usecases.policy import policies, ratelimits
from scheduler.usecases.privacy.personal_data import open_id

# Codes texted again per partner and hold: a lost or late text, not a code lottery.
RESENDS = 3
# Recovery codes per partner and day, each valid RECOVERY_MINUTES with
# settings.code_max_attempts tries.
RECOVERY_SENDS = 3
RECOVERY_MINUTES = 10
PENDING = "pending_confirmation"


def _phone(raw: str) -> str | None:
    try:
        return normalize_mobile(raw)
    except InvalidIdentity:
        return None


async def _loaded(reference: str) -> Loaded | None:
    if not reference.isprintable() or not reference.strip():
        return None
    return await load(reference)


def _by_phone(loaded: Loaded | None, phone: str | None) -> list[PartyRecord]:
    if loaded is None or phone is None:
        return []
    return [p for p in loaded.parties if p.phone == phone]


async def locked(reference: str) -> bool:
    """Was this hold released because its codes locked (too many wrong codes)?"""
    loaded = await _loaded(reference)
    if loaded is None:
        return False
    rows = await AppointmentEvent.count().where(
        (AppointmentEvent.appointment == loaded.id)
        & (AppointmentEvent.kind == booking.LOCKED_EVENT)
    )
    return bool(rows)


async def code_status(reference: str, settings: Settings) -> dict[str, dict[str, int]]:
    """Per role: attempts and resends left (the code page shows them; the caller
    already checked the manage token)."""
    loaded = await _loaded(reference)
    if loaded is None:
        return {}
    sent = await _resends(loaded.id)
    return {
        p.role: {
            "attempts_left": max(0, settings.code_max_attempts - p.code_attempts),
            "resends_left": max(0, RESENDS - sent.get(p.role, 0)),
        }
        for p in loaded.parties
    }


async def _resends(appointment_id: int) -> dict[str, int]:
    rows = await CodeResend.select(CodeResend.role).where(CodeResend.appointment == appointment_id)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["role"]] = counts.get(row["role"], 0) + 1
    return counts


async def _count_sms(settings: Settings, party: PartyRecord, now: datetime) -> None:
    """The per-ID and per-phone hourly SMS limits every code text counts against."""
    person = PartyInput(
        name=party.name,
        id_type=party.id_type,
        id_number=open_id(settings, party),
        phone=party.phone,
    )
    await ratelimits.check_parties(settings, [person], now)


async def _resend(loaded: Loaded, party: PartyRecord, now: datetime, settings: Settings) -> None:
    """A new code for one pending partner; inside the caller's write transaction."""
    expires = loaded.appointment.hold_expires_at
    if loaded.appointment.status != PENDING or expires is None or expires <= now:
        raise DomainError("hold-expired")
    if party.confirmed_at is not None:
        raise DomainError("not-pending")
    if party.code_attempts >= settings.code_max_attempts:
        raise DomainError("too-many-attempts")
    sent = (await _resends(loaded.id)).get(party.role, 0)
    if sent >= RESENDS:
        raise DomainError("rate-limited", reason="resends", retry_after=0)
    await _count_sms(settings, party, now)
    code = new_code()
    await confirmation.replace_code(
        confirmation.Owner("appointment", loaded.id), party, code, settings.secret_key
    )
    await CodeResend.insert(CodeResend(appointment=loaded.id, role=party.role, at=now))
    minutes = max(1, int((expires - now).total_seconds() // 60))
    await outbox.enqueue(
        key=f"appointment:{loaded.id}:code:{party.role}:resend:{sent + 1}",
        to_phone=party.phone,
        template="code",
        locale=loaded.appointment.locale,
        payload={"code": code, "reference": loaded.appointment.reference, "minutes": minutes},
        now=now,
        terms=await policies.sms_terms(settings),
        urgent=True,
        appointment_id=loaded.id,
        validity_seconds=max(60, minutes * 60),
    )


async def resend(
    reference: str, token: str | None, role: str, *, now: datetime, settings: Settings
) -> dict[str, dict[str, int]]:
    """Whoever fills in the booking (manage token) has one partner's code texted again."""
    if role not in booking.PARTY_ROLES:
        raise DomainError("invalid-input", field="party", reason="party")
    async with write_transaction():
        loaded = await load_for_owner(reference if reference.isprintable() else "", token)
        await _resend(loaded, loaded.party(role), now, settings)
    return await code_status(reference, settings)


async def resend_to_phone(reference: str, phone: str, *, now: datetime, settings: Settings) -> None:
    """A partner on their own phone asks for their code again. Always the same
    answer, sent or not (nothing tells whether the booking or number exists)."""
    number = _phone(phone)
    async with write_transaction():
        loaded = await _loaded(reference)
        for party in _by_phone(loaded, number):
            assert loaded is not None
            try:
                await _resend(loaded, party, now, settings)
            except DomainError:
                continue  # confirmed, locked, over a limit: silently nothing
            return


async def confirm_by_phone(
    reference: str, phone: str, code: str, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """One partner confirms with their own phone number and code. Anything wrong
    (reference, phone, code, a lapsed hold the code does not open) is ``not-found``;
    a wrong code still counts against that partner."""
    loaded = await _loaded(reference)
    parties = _by_phone(loaded, _phone(phone))
    if loaded is None or not parties:
        raise DomainError("not-found")
    # booking.confirm spends the partner's attempt before it compares (issue 13.6):
    # comparing here first would check any number of codes in parallel. Partners
    # with this phone in turn, pending first (two partners share a phone only on
    # bookings from before issue 13: each guess then costs both an attempt).
    for party in sorted(parties, key=lambda p: p.confirmed_at is not None):
        try:
            return await booking.confirm(reference, party.role, code, now=now, settings=settings)
        except DomainError as exc:
            if exc.slug not in ("wrong-code", "too-many-attempts", "not-found"):
                raise  # the right code: its answer (hold expired, slot gone) is theirs
    raise DomainError("not-found")


async def start_recovery(reference: str, phone: str, *, now: datetime, settings: Settings) -> None:
    """Text a recovery code to the partner with this phone. Always the same answer."""
    number = _phone(phone)
    async with write_transaction():
        loaded = await _loaded(reference)
        parties = _by_phone(loaded, number)
        if loaded is None or not parties or loaded.appointment.erased_at is not None:
            return
        party = parties[0]
        since = now - timedelta(days=1)
        sent = await ManageRecovery.count().where(
            (ManageRecovery.appointment == loaded.id)
            & (ManageRecovery.role == party.role)
            & (ManageRecovery.created_at > since)
        )
        if sent >= RECOVERY_SENDS:
            return
        try:
            await _count_sms(settings, party, now)
        except DomainError:
            return
        code = new_code()
        await ManageRecovery.insert(
            ManageRecovery(
                appointment=loaded.id,
                role=party.role,
                code_hash=_recovery_hash(settings, loaded.id, party.role, code),
                attempts=0,
                expires_at=now + timedelta(minutes=RECOVERY_MINUTES),
                used_at=None,
                created_at=now,
            )
        )
        await outbox.enqueue(
            key=f"appointment:{loaded.id}:recovery:{party.role}:{now:%Y%m%d%H%M%S}:{sent}",
            to_phone=party.phone,
            template="manage_recovery",
            locale=loaded.appointment.locale,
            payload={
                "code": code,
                "reference": loaded.appointment.reference,
                "minutes": RECOVERY_MINUTES,
            },
            now=now,
            terms=await policies.sms_terms(settings),
            urgent=True,
            appointment_id=loaded.id,
            validity_seconds=RECOVERY_MINUTES * 60,
        )


def _recovery_hash(settings: Settings, appointment_id: int, role: str, code: str) -> str:
    return keyed_hash(settings.secret_key, "recovery", f"{appointment_id}:{role}:{code}")


async def finish_recovery(
    reference: str, phone: str, code: str, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """The recovery code opens the booking: a new manage code, returned once.
    Anything wrong answers ``not-found``; a wrong code counts against the code."""
    number = _phone(phone)
    outcome: DomainError | None = None
    async with write_transaction():
        loaded = await _loaded(reference)
        parties = _by_phone(loaded, number)
        if loaded is None or not parties:
            raise DomainError("not-found")
        role = parties[0].role
        latest = await (
            ManageRecovery.select()
            .where(
                (ManageRecovery.appointment == loaded.id)
                & (ManageRecovery.role == role)
                & ManageRecovery.used_at.is_null()
                & (ManageRecovery.expires_at > now)
            )
            .order_by(ManageRecovery.id, ascending=False)
            .first()
        )
        if latest is None:
            raise DomainError("not-found")
        # The attempt is spent before the comparison, by a conditional UPDATE, so
        # parallel guesses cannot check more codes than the limit (issue 13.6).
        spent = await (
            ManageRecovery.update({ManageRecovery.attempts: ManageRecovery.attempts + 1})
            .where(
                (ManageRecovery.id == latest["id"])
                & (ManageRecovery.attempts < settings.code_max_attempts)
            )
            .returning(ManageRecovery.id)
        )
        if not spent:
            raise DomainError("not-found")
        if _recovery_hash(settings, loaded.id, role, code.strip()) != latest["code_hash"]:
            outcome = DomainError("not-found")
        else:
            used = await (
                ManageRecovery.update({ManageRecovery.used_at: now})
                .where((ManageRecovery.id == latest["id"]) & ManageRecovery.used_at.is_null())
                .returning(ManageRecovery.id)
            )
            if not used:
                raise DomainError("not-found")  # a twin request used it first
            token = new_manage_token()
            await Appointment.update({Appointment.manage_token_hash: hash_token(token)}).where(
                Appointment.id == loaded.id
            )
            await AppointmentEvent.insert(
                AppointmentEvent(
                    appointment=loaded.id, kind="access_recovered", actor="couple", at=now
                )
            )
    if outcome is not None:
        raise outcome  # after commit: the failed attempt is kept
    return public_view(loaded) | {"manage_token": token}
