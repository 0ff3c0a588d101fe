"""Use cases for couples: hold, confirm, cancel, move, expire. One transaction each.

Every state change of an appointment is a conditional UPDATE on its status, so a
confirmation racing the expiry job, or two cancels racing each other, change the
seat counters exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.db import full_marks
from scheduler.db.appointments import (
    ACTIVE_STATUSES,
    Loaded,
    load,
    load_for_owner,
    public_view,
    slot_view,
)
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.records import AppointmentRecord, PartyRecord, load_slot
from scheduler.db.seats import (
    lock_counters,
    release_hold,
    release_seat,
    stray_holds,
    take_awaited_seat,
    take_seat,
    take_seat_in_share,
)
from scheduler.db.tables import (
    Appointment,
    AppointmentEvent,
    IdClaim,
)
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES
from scheduler.kernel.security import (
    hash_token,
    keyed_hash,
    new_code,
    new_manage_token,
    new_reference,
)
from scheduler.settings import Settings
from scheduler.usecases.booking import idempotency, manage_text
from scheduler.usecases.booking.checks import admit_hold, bookable_for, bookable_slot
from scheduler.usecases.couples import confirmation, holds
from scheduler.usecases.couples.holds import ONE_ACTIVE_PER_ID
from scheduler.usecases.couples.partners import (
    PARTY_ROLES,
    PartyInput,
    party_problems,
    refuse_passports,
)
from scheduler.usecases.couples.texting import notify_couple
from scheduler.usecases.policy import bans, policies, ratelimits, rules
from scheduler.usecases.privacy.personal_data import id_columns
from scheduler.usecases.waitlist import offers as waitlist_offers

PENDING = ("pending_confirmation",)
# The history entry of a hold released because its codes locked (wrong too often).
LOCKED_EVENT = "code_locked"
# A couple a blackout could not place may still move or cancel themselves; their
# old slot is closed, so the online cutoff does not apply to them.
CHANGEABLE = (*ACTIVE_STATUSES, "needs_rebooking")


@dataclass(frozen=True)
class BookingInput:
    slot_id: int
    service: str
    party_a: PartyInput
    party_b: PartyInput
    locale: str = "zh-Hans"


def clean_couple(data: BookingInput) -> tuple[PartyInput, PartyInput]:
    """Both parties normalised, or one error listing every problem of the form."""
    errors: list[DomainError] = []
    if data.locale not in LOCALES:
        errors.append(DomainError("invalid-input", field="locale", reason="locale"))
    party_a, problems_a = party_problems("a", data.party_a)
    party_b, problems_b = party_problems("b", data.party_b)
    errors += problems_a + problems_b
    if party_a and party_b and party_a.id_number == party_b.id_number:  # whatever the types
        errors.append(DomainError("invalid-input", field="party_b.id_number", reason="same-person"))
    if party_a and party_b and party_a.phone == party_b.phone:
        # Each partner confirms on their own phone: one phone would let one person
        # hold for two, and halve what a squatter needs (docs/decisions.md).
        errors.append(DomainError("invalid-input", field="party_b.phone", reason="same-phone"))
    if errors:
        raise DomainError.all_of(errors)
    assert party_a is not None and party_b is not None
    return party_a, party_b


def id_claim(secret_key: str, service: str, id_type: str, id_number: str) -> str:
    return f"{service}:" + keyed_hash(secret_key, "id", f"{id_type}:{id_number}")


def id_claims_of(secret_key: str, service: str, id_type: str, id_number: str) -> list[str]:
    """The claims a booking takes for one person: the typed one (the form lottery
    winners and waiting-list offers claim too, from the parties' stored hash) and
    one on the normalised number whatever its type, so the same number booked
    again as another ID type is ``already-booked`` (issue 13.7)."""
    # The same hash as personal_data.number_hash (which takes the settings).
    any_type = f"{service}:any:" + keyed_hash(secret_key, "id-number", id_number)
    return [id_claim(secret_key, service, id_type, id_number), any_type]


async def hold(
    data: BookingInput,
    *,
    now: datetime,
    settings: Settings,
    idem: idempotency.Key | None = None,
) -> dict[str, Any]:
    """Hold a seat for a couple and text each party a code. Returns the API body."""
    party_a, party_b = clean_couple(data)
    full_marks.refuse_if_marked(data.slot_id, data.service)
    try:
        return await _hold(data, party_a, party_b, now=now, settings=settings, idem=idem)
    except DomainError as exc:
        if exc.slug == "slot-full":
            full_marks.mark(data.slot_id, data.service)
        raise


async def _hold(
    data: BookingInput,
    party_a: PartyInput,
    party_b: PartyInput,
    *,
    now: datetime,
    settings: Settings,
    idem: idempotency.Key | None,
) -> dict[str, Any]:
    claims = (
        [
            claim
            for p in (party_a, party_b)
            for claim in id_claims_of(settings.secret_key, data.service, p.id_type, p.id_number)
        ]
        if data.service in ONE_ACTIVE_PER_ID
        else []
    )
    claims.sort()  # one insert order for everybody: no deadlock between twin bookings
    parties = [("a", party_a.id_type, party_a.id_number), ("b", party_b.id_type, party_b.id_number)]
    bookable = await bookable_for(data.slot_id, data.service, now, claims, parties, settings)
    slot = bookable.slot
    office = slot.office
    refuse_passports(party_a, party_b)  # after already-booked, the better answer
    policies.refuse_phone_regions(
        await policies.current(), [office.code], [("a", party_a.phone), ("b", party_b.phone)]
    )
    # Early answers, slot-full before a ban; take_seat decides. They save the write
    # transaction (and on SQLite the write lock) per refusal.
    await admit_hold(bookable, data.service, parties, now, settings)
    seat = slot.seat(people=2)
    # Stored sealed, masked and hashed, never in plaintext
    # (scheduler/usecases/privacy/personal_data.py).
    ids = {"a": id_columns(settings, party_a.id_type, party_a.id_number)}
    ids["b"] = id_columns(settings, party_b.id_type, party_b.id_number)
    reference, token = new_reference(office.code), new_manage_token()
    codes = {"a": new_code(), "b": new_code()}
    # Short until a partner has entered their right code (then the full hold time):
    # a hold nobody answers gives its seat back soon (issue 13.3).
    minutes = first_hold_minutes(office.hold_minutes, settings)
    expires = now + timedelta(minutes=minutes)
    async with write_transaction():
        # Per ID and phone, counted with the texts this hold sends (rolled back with it).
        await ratelimits.check_parties(settings, (party_a, party_b), now)
        appointment_id = await holds.insert_appointment(
            holds.appointment_row(
                reference=reference,
                manage_token_hash=hash_token(token),
                office_id=office.id,
                slot_id=slot.id,
                service=data.service,
                locale=data.locale,
                people=2,
                expires=expires,
                now=now,
            )
        )
        held = [
            holds.HeldParty(role, p.name, p.id_type, p.phone, **ids[role])
            for role, p in (("a", party_a), ("b", party_b))
        ]
        party_ids = await holds.write_held(
            appointment_id,
            slot_id=slot.id,
            claims=claims,
            parties=held,
            codes=codes,
            actor="couple",
            text=holds.CodeText(
                template="code",
                key=lambda role: f"appointment:{appointment_id}:code:{role}",
                locale=data.locale,
                payload={"minutes": minutes},
                validity_seconds=max(60, office.hold_minutes * 60),
            ),
            reference=reference,
            now=now,
            secret_key=settings.secret_key,
            terms=await policies.sms_terms(settings),
            also=[manage_text.keep(settings, appointment_id, token)],
        )
        # The counters last: their rows are the contended ones (every booking of the
        # day updates the same office_day row), locked from here to COMMIT only.
        # Within the unconfirmed share a seat is held; beyond it the couple's seat is
        # taken when both have confirmed (issue 13.3: squatters never confirm).
        awaiting = not await take_seat_in_share(
            seat,
            appointment_id,
            settings.hold_unconfirmed_percent,
            settings.hold_waiting_per_free_seat,
        )
        # What a reload would read back, from what was just written: two statements
        # fewer inside the transaction.
        loaded = Loaded(
            appointment=AppointmentRecord(
                id=appointment_id,
                reference=reference,
                manage_token_hash=hash_token(token),
                slot=slot,
                service=data.service,
                status="pending_confirmation",
                locale=data.locale,
                people=2,
                hold_expires_at=expires,
                created_at=now,
                confirmed_at=None,
                cancelled_at=None,
                erased_at=None,
                awaiting_seat=awaiting,
            ),
            parties=tuple(p.stored(party_ids[p.role]) for p in held),
        )
        body = public_view(loaded) | {"manage_token": token}
        if idem is not None:
            await idempotency.record(idem, 201, body, now, settings)
    return body


def first_hold_minutes(hold_minutes: int, settings: Settings) -> int:
    """How long a new first-come hold lasts before either partner confirms."""
    if settings.hold_unstarted_minutes <= 0:
        return hold_minutes
    return min(hold_minutes, settings.hold_unstarted_minutes)


async def _reload(reference: str) -> Loaded:
    loaded = await load(reference)
    if loaded is None:  # pragma: no cover - the row was written in this transaction
        raise DomainError("not-found")
    return loaded


async def _event(
    appointment_id: int,
    kind: str,
    now: datetime,
    *,
    from_slot: int | None = None,
    to_slot: int | None = None,
    actor: str = "couple",
) -> None:
    await AppointmentEvent.insert(
        AppointmentEvent(
            appointment=appointment_id,
            kind=kind,
            from_slot=from_slot,
            to_slot=to_slot,
            actor=actor,
            at=now,
        )
    )


async def _transition(
    appointment_id: int,
    to_status: str,
    from_statuses: tuple[str, ...],
    *,
    on_slot: int | None = None,
    **extra: Any,
) -> bool:
    """Move the status only if nobody else has; the winner alone touches the counters.

    ``on_slot``: only if the appointment is still on the slot the caller read (a
    concurrent move may have committed since), so the seat it gives back is the
    seat the appointment really holds.
    """
    values: dict[Any, Any] = {Appointment.status: to_status}
    values.update({getattr(Appointment, k): v for k, v in extra.items()})
    where = (Appointment.id == appointment_id) & Appointment.status.is_in(list(from_statuses))
    if on_slot is not None:
        where &= Appointment.slot == on_slot
    rows = await Appointment.update(values).where(where).returning(Appointment.id)
    return bool(rows)


async def _free(
    loaded: Loaded,
    to_status: str,
    now: datetime,
    *,
    actor: str,
    from_statuses: tuple[str, ...] = ACTIVE_STATUSES,
) -> bool:
    """End an active appointment: status, seat, ID claims, history. Inside a transaction."""
    extra = {"cancelled_at": now} if to_status == "cancelled" else {}
    if not await _transition(
        loaded.id,
        to_status,
        from_statuses,
        on_slot=loaded.seat.slot_id,
        hold_expires_at=None,
        **extra,
    ):
        return False
    if not loaded.appointment.awaiting_seat:
        await release_seat(loaded.seat)
    await release_hold(loaded.id)
    await IdClaim.delete().where(IdClaim.appointment == loaded.id)
    await _event(loaded.id, to_status, now, from_slot=loaded.slot.id, actor=actor)
    return True


def _possible_reference(reference: str) -> str:
    """A reference with control characters cannot exist: not found, before any
    query (PostgreSQL would refuse a NUL in the query rather than find nothing)."""
    if not reference.isprintable():
        raise DomainError("not-found")
    return reference


async def confirm(
    reference: str, role: str, code: str, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """One party confirms with their code; both confirmed makes the booking final."""
    reference = _possible_reference(reference)
    if role not in PARTY_ROLES:
        raise DomainError("invalid-input", field="party", reason="party")
    outcome: DomainError | None = None
    async with write_transaction():
        loaded = await load(reference)
        if loaded is None:
            raise DomainError("not-found")
        party = loaded.party(role)
        status = loaded.appointment.status
        if status == "pending_confirmation" and loaded.appointment.hold_lapsed(now):
            # The seat goes back at once, whoever asks (the job would free it anyway).
            await _free(loaded, "expired", now, actor="system", from_statuses=PENDING)
            status = "expired"
        pending = status == "pending_confirmation" and party.confirmed_at is None
        if status == "expired" and party.code_attempts >= settings.code_max_attempts:
            # It ended by locking (issue 14): no attempt left to check a code with, and
            # the couple who typed them is told why (a fact, no booking data).
            raise DomainError("too-many-attempts", reason="released")
        # Spend the attempt before comparing (scheduler/usecases/couples/attempts.py). Only a
        # pending party hears how its code fared; anything else is told to whoever
        # has the right code, and answered as an unknown reference otherwise (13.5).
        owner = confirmation.Owner("appointment", loaded.id)
        checked = await confirmation.check(owner, party, code, settings)
        if pending and checked.result == "locked":
            outcome = await _lock_out(loaded, now)  # locked before holds were released
        elif pending and checked.result == "wrong":
            outcome = await _after_wrong_code(loaded, checked.attempts, now, settings)
        elif not checked.right:
            outcome = DomainError("not-found")
        elif status == "expired":
            outcome = DomainError("hold-expired")
        elif pending:
            outcome = await _confirm_party(loaded, party, now, settings)
        elif party.confirmed_at is None:
            outcome = DomainError("not-pending")
        # Else already confirmed, right code: a retried request gets the same answer.
        loaded = await _reload(reference)
        lost_to_expiry = status == "pending_confirmation" and loaded.appointment.status == "expired"
        if outcome is None and lost_to_expiry:
            # The expiry job committed after our first read: roll back and say so.
            raise DomainError("hold-expired")
    if outcome is not None:
        if outcome.params.get("reason") == "released":
            await waitlist_offers.seat_freed(loaded.seat, loaded.appointment.service, now, settings)
        raise outcome  # after commit: the expiry or the spent attempt is kept
    return public_view(loaded)


async def _after_wrong_code(
    loaded: Loaded, attempts: int, now: datetime, settings: Settings
) -> DomainError:
    """The answer to a wrong code: the attempts left, or, at the last one, the hold
    released (seat and ID claims) so the couple can book again at once rather
    than wait out a hold nobody can confirm any more."""
    left = settings.code_max_attempts - attempts
    if left > 0:
        return DomainError("wrong-code", field="code", reason="left", attempts_left=left)
    return await _lock_out(loaded, now)


async def _lock_out(loaded: Loaded, now: datetime) -> DomainError:
    if await _free(loaded, "expired", now, actor="system", from_statuses=PENDING):
        await _event(loaded.id, LOCKED_EVENT, now, actor="system")
    return DomainError("too-many-attempts", reason="released")


async def _confirm_party(
    loaded: Loaded, party: PartyRecord, now: datetime, settings: Settings
) -> DomainError | None:
    """Record one party's confirmation; the second one makes the booking final (and
    takes the seat of a hold that waited for one: if it is gone, the hold ends and
    its refusal is returned)."""
    await confirmation.mark_confirmed(party, now)
    await _event(loaded.id, f"confirmed_{party.role}", now)
    others_done = all(p.confirmed_at is not None for p in loaded.parties if p.id != party.id)
    if not others_done:
        # Started: the short first hold becomes the office's full hold time from the
        # hold's start (never shorter than it is: offers and awards hold longer).
        full = loaded.appointment.created_at + timedelta(minutes=loaded.office.hold_minutes)
        await Appointment.update({Appointment.hold_expires_at: full}).where(
            (Appointment.id == loaded.id)
            & (Appointment.status == PENDING[0])
            & (Appointment.hold_expires_at < full)
        )
    if others_done and loaded.appointment.awaiting_seat:
        refused = await take_awaited_seat(loaded.seat, loaded.id)
        if refused is not None:
            await _free(loaded, "expired", now, actor="system", from_statuses=PENDING)
            return refused
    if others_done and await _transition(
        loaded.id, "confirmed", ("pending_confirmation",), confirmed_at=now, hold_expires_at=None
    ):
        await release_hold(loaded.id)
        await _event(loaded.id, "confirmed", now)
        await manage_text.notify_confirmed(loaded, now, settings)
    return None


async def view(reference: str, token: str | None) -> dict[str, Any]:
    loaded = await load_for_owner(_possible_reference(reference), token)
    return public_view(loaded) | {
        "rescheduled_from": await _rescheduled_from(loaded),
        "checklist": await rules.checklist(
            loaded.appointment.service, loaded.slot.day, loaded.parties
        ),
    }


async def _rescheduled_from(loaded: Loaded) -> dict[str, Any] | None:
    """The slot a blackout moved the couple away from, if that is the latest change."""
    last = await (
        AppointmentEvent.select(AppointmentEvent.kind, AppointmentEvent.from_slot)
        .where(AppointmentEvent.appointment == loaded.id)
        .order_by(AppointmentEvent.id, ascending=False)
        .first()
    )
    if last is None or last["kind"] not in ("rescheduled", "needs_rebooking"):
        return None
    slot = await load_slot(last["from_slot"])
    return slot_view(slot) if slot else None


def _check_changeable(loaded: Loaded, now: datetime, settings: Settings) -> None:
    status = loaded.appointment.status
    if status not in CHANGEABLE:
        raise DomainError("not-pending")
    too_close = loaded.slot.start_at - now < timedelta(hours=settings.cancel_cutoff_hours)
    if status != "needs_rebooking" and too_close:
        raise DomainError("too-late", hours=settings.cancel_cutoff_hours)


async def cancel(
    reference: str, token: str | None, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    reference = _possible_reference(reference)
    async with write_transaction():
        loaded = await load_for_owner(reference, token)
        _check_changeable(loaded, now, settings)
        if not await _free(loaded, "cancelled", now, actor="couple", from_statuses=CHANGEABLE):
            raise DomainError("not-pending")
        await notify_couple(loaded, "cancelled", now, settings, urgent=True)
        await bans.after_cancel(loaded.parties, now)  # may cross the no-show rule's threshold
        loaded = await _reload(reference)
    await waitlist_offers.seat_freed(
        loaded.seat, loaded.appointment.service, now, settings
    )  # after commit
    return public_view(loaded)


async def move(
    reference: str, token: str | None, slot_id: int, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """Rebook to another slot of the same office and service: the new seat is taken
    before the old one is freed, in one transaction, so the couple never ends up
    with no seat (or two)."""
    loaded = await load_for_owner(_possible_reference(reference), token)
    if slot_id == loaded.slot.id:
        return public_view(loaded)
    _check_changeable(loaded, now, settings)
    if loaded.appointment.awaiting_seat:
        raise DomainError("not-pending")  # no seat to move yet: cancel and book again
    slot = await bookable_slot(slot_id, loaded.appointment.service, now)
    if slot.office.id != loaded.office.id:
        raise DomainError("invalid-input", field="slot_id", reason="other-office")
    old_seat, new_seat = loaded.seat, slot.seat(loaded.appointment.people)
    async with write_transaction():
        # The appointment row first, then the counters in their global order: the
        # lock order of cancel and expiry too, so none of them can deadlock a move.
        # A couple waiting for a new time (needs_rebooking) is confirmed again by choosing one.
        was = loaded.appointment.status
        status = "confirmed" if was == "needs_rebooking" else was
        moved = await (
            Appointment.update({Appointment.slot: slot_id, Appointment.status: status})
            .where(
                (Appointment.id == loaded.id)
                & (Appointment.slot == old_seat.slot_id)
                & (Appointment.status == loaded.appointment.status)
            )
            .returning(Appointment.id)
        )
        if not moved:
            raise DomainError("not-pending")  # changed under us
        await lock_counters(old_seat, new_seat)
        await take_seat(new_seat, previous=old_seat)  # a full cap rolls the move back
        await release_seat(old_seat, keep=new_seat)
        await _event(loaded.id, "moved", now, from_slot=old_seat.slot_id, to_slot=slot_id)
        loaded = await _reload(reference)
        # Keyed by slot and time: moving A -> B -> A -> B texts the couple each time.
        suffix = f":{slot_id}:{int(now.timestamp())}"
        await notify_couple(loaded, "moved", now, settings, suffix=suffix, urgent=True)
    await waitlist_offers.seat_freed(
        old_seat, loaded.appointment.service, now, settings
    )  # after commit
    return public_view(loaded)


async def expire_holds(now: datetime, settings: Settings, *, batch: int = 200) -> int:
    """Release holds whose time ran out; returns how many were released."""
    for appointment_id in await stray_holds(batch):
        async with write_transaction():
            await release_hold(appointment_id)
    due = await (
        Appointment.select(Appointment.reference)
        .where((Appointment.status == PENDING[0]) & (Appointment.hold_expires_at <= now))
        .limit(batch)
    )
    released = 0
    for row in due:
        async with write_transaction():
            loaded = await load(row["reference"])
            if loaded is not None and await _free(
                loaded, "expired", now, actor="system", from_statuses=PENDING
            ):
                await notify_couple(loaded, "expired", now, settings)
                released += 1
            else:
                continue
        # After commit.
        await waitlist_offers.seat_freed(loaded.seat, loaded.appointment.service, now, settings)
    return released


async def book(
    data: BookingInput, *, now: datetime, settings: Settings, idem: idempotency.Key | None
) -> tuple[int, dict[str, Any]]:
    """``hold`` behind an Idempotency-Key: a retry, even one racing the first
    request, gets the first request's status and body."""
    if idem is not None and (stored := await idempotency.replay(idem, settings)) is not None:
        return stored
    try:
        return 201, await hold(data, now=now, settings=settings, idem=idem)
    except Exception as exc:
        # The racing twin committed first: our hold failed on its ID claims or key.
        if idem is not None and (isinstance(exc, DomainError) or is_unique_violation(exc)):
            stored = await idempotency.replay(idem, settings)
            if stored is not None:
                return stored
        raise
