"""Waiting list, couple side: join, verify phones, view, leave. One transaction each.

A couple is ONE entry (both partners' IDs and phones); both phones are verified
with SMS codes as for a booking before the entry takes its place in the queue.
Offers (a held appointment when a seat frees) live in scheduler/usecases/waitlist/offers.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.appointments import slot_view
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.records import PartyRecord, load_slot
from scheduler.db.tables import Appointment, Office, OfficeService
from scheduler.db.waitlist_tables import WaitlistClaim, WaitlistEntry
from scheduler.domain import waitlist as rules
from scheduler.domain.calendar import last_bookable_day
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES
from scheduler.kernel.security import (
    hash_token,
    new_manage_token,
    new_reference,
    normalize_reference,
    tokens_match,
)
from scheduler.settings import Settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.couples import codes as couple_codes
from scheduler.usecases.couples import confirmation
from scheduler.usecases.couples.partners import PartyInput
from scheduler.usecases.policy import policies, ratelimits
from scheduler.usecases.policy import rules as registry_rules
from scheduler.usecases.waitlist import offers as waitlist_offers

log = logging.getLogger("scheduler.waitlist")


@dataclass(frozen=True)
class JoinInput:
    service: str
    day: date
    offices: tuple[str, ...]
    party_a: PartyInput
    party_b: PartyInput
    time_from: str | None = None
    time_to: str | None = None
    locale: str = "zh-Hans"


def _invalid(exc: rules.InvalidRequest) -> DomainError:
    return DomainError("invalid-input", field=exc.field, reason=exc.reason)


async def _offices(codes: tuple[str, ...], service: str) -> list[dict[str, Any]]:
    """The requested offices in the couple's order; each must offer the service."""
    rows = await Office.select().where(Office.code.is_in(list(codes)) & Office.active.eq(True))
    offering = {
        r["office"]
        for r in await OfficeService.select(OfficeService.office).where(
            (OfficeService.service == service) & OfficeService.active.eq(True)
        )
    }
    by_code = {r["code"]: r for r in rows if r["id"] in offering}
    missing = [c for c in codes if c not in by_code]
    if missing:
        raise DomainError("invalid-input", field="offices", reason="unknown-office")
    return [by_code[c] for c in codes]


def claim_of(day: date, id_hash: str) -> str:
    return f"{day.isoformat()}:{id_hash}"


async def join(data: JoinInput, *, now: datetime, settings: Settings) -> dict[str, Any]:
    """Put a couple on the list (pending until both phones are verified)."""
    if data.locale not in LOCALES:
        raise DomainError("invalid-input", field="locale", reason="locale")
    try:
        codes = rules.check_offices(data.offices)
        window = rules.parse_time_range(data.time_from, data.time_to)
    except rules.InvalidRequest as exc:
        raise _invalid(exc) from exc
    parties = couple_codes.clean_couple(data.party_a, data.party_b)
    offices = await _offices(codes, data.service)
    await couple_codes.refuse_phone_regions([o["code"] for o in offices], parties)
    first = offices[0]
    tz = ZoneInfo(first["timezone"])
    opens = datetime.strptime(first["booking_opens_at"], "%H:%M").time()
    try:
        rules.check_day(
            data.day,
            now.astimezone(tz).date(),
            last_bookable_day(now, tz, first["booking_days_ahead"], opens),
        )
    except rules.InvalidRequest as exc:
        raise _invalid(exc) from exc
    # The booking's entry rules, at every office of the list: an offer must be a
    # seat the couple may take.
    for office in offices:
        await registry_rules.admit(
            data.service,
            data.day,
            [(role, p.id_type, p.id_number) for role, p in parties],
            now,
            tz=ZoneInfo(office["timezone"]),
            designated=bool(office["designated"]),
        )
    reference, token = new_reference(first["code"]), new_manage_token()
    codes_sent = couple_codes.new_codes()
    ids = couple_codes.sealed_ids(settings, parties)
    async with write_transaction():
        # Per ID and phone, counted with the codes this sends (rolled back with it).
        await ratelimits.check_parties(settings, [p for _, p in parties], now)
        rows = await WaitlistEntry.insert(
            WaitlistEntry(
                reference=reference,
                manage_token_hash=hash_token(token),
                service=data.service,
                day=data.day,
                office=first["id"],
                offices=[o["id"] for o in offices],
                time_from=window[0].strftime("%H:%M") if window else None,
                time_to=window[1].strftime("%H:%M") if window else None,
                status="pending",
                locale=data.locale,
                created_at=now,
                verify_expires_at=now + timedelta(minutes=first["hold_minutes"]),
            )
        ).returning(WaitlistEntry.id)
        entry_id = rows[0]["id"]
        try:
            await WaitlistClaim.insert(
                *[
                    WaitlistClaim(claim=claim_of(data.day, h), entry=entry_id)
                    for h in couple_codes.claim_hashes(ids)
                ]
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise DomainError("already-waiting") from exc
            raise
        # Valid as long as the verification is (the office's hold time).
        text = couple_codes.code_text(
            f"waitlist:{entry_id}", "waitlist_code", data.locale, first["hold_minutes"]
        )
        owner = confirmation.Owner("entry", entry_id)
        people = couple_codes.people(parties, ids)
        await confirmation.start(
            owner,
            people,
            codes_sent,
            text,
            reference=reference,
            now=now,
            secret_key=settings.secret_key,
            terms=await policies.sms_terms(settings),
        )
    return await _view(reference) | {"manage_token": token}


async def _load(reference: str) -> tuple[dict[str, Any], list[PartyRecord]] | None:
    if not reference.isprintable():
        return None
    entry = (
        await WaitlistEntry.select()
        .where(WaitlistEntry.reference == normalize_reference(reference))
        .first()
        .output(load_json=True)
    )
    if entry is None:
        return None
    return entry, await confirmation.load(confirmation.Owner("entry", entry["id"]))


async def _load_for_owner(
    reference: str, token: str | None
) -> tuple[dict[str, Any], list[PartyRecord]]:
    """404 alike for an unknown reference and a wrong token."""
    loaded = await _load(reference)
    if loaded is None or not token or not tokens_match(token, loaded[0]["manage_token_hash"]):
        raise DomainError("not-found")
    return loaded


async def _end(
    entry_id: int, to_status: str, from_statuses: tuple[str, ...], now: datetime
) -> bool:
    """Close an entry and free its per-date ID claims; False if someone else did first."""
    rows = (
        await WaitlistEntry.update({WaitlistEntry.status: to_status, WaitlistEntry.ended_at: now})
        .where((WaitlistEntry.id == entry_id) & WaitlistEntry.status.is_in(list(from_statuses)))
        .returning(WaitlistEntry.id)
    )
    if rows:
        await WaitlistClaim.delete().where(WaitlistClaim.entry == entry_id)
    return bool(rows)


async def confirm(
    reference: str, role: str, code: str, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """One partner verifies their phone; both verified puts the couple in the queue."""
    couple_codes.check_role(role)
    outcome: DomainError | None = None
    queued = False
    async with write_transaction():
        loaded = await _load(reference)
        if loaded is None:
            raise DomainError("not-found")
        entry, parties = loaded
        party = next(p for p in parties if p.role == role)
        owner = confirmation.Owner("entry", entry["id"])
        if entry["status"] == "pending" and entry["verify_expires_at"] <= now:
            await _end(entry["id"], "ended", ("pending",), now)
            entry["status"] = "ended"
        if entry["status"] != "pending" or party.confirmed_at is not None:
            # Told only to whoever has the code; else as an unknown reference (issue 13.5).
            if not await confirmation.proves_code(owner, party, code, settings):
                outcome = DomainError("not-found")
            elif entry["status"] == "ended" and party.confirmed_at is None:
                outcome = DomainError("hold-expired")
            elif party.confirmed_at is None:
                outcome = DomainError("not-pending")
            # Else already verified: a retried request gets the same answer.
        else:
            outcome, both = await confirmation.enter_code(
                owner, party, parties, code, now=now, settings=settings
            )
            if both:
                queued = bool(
                    await WaitlistEntry.update(
                        {WaitlistEntry.status: "waiting", WaitlistEntry.joined_at: now}
                    )
                    .where((WaitlistEntry.id == entry["id"]) & (WaitlistEntry.status == "pending"))
                    .returning(WaitlistEntry.id)
                )
    if outcome is not None:
        raise outcome  # after commit: the failed attempt or the expiry is kept
    if queued:
        # A seat may be free already (or the day was never full): offer it at once.
        await waitlist_offers.offer_for_entry(entry["id"], now, settings)
    return await _view(entry["reference"])


async def view(reference: str, token: str | None, *, now: datetime) -> dict[str, Any]:
    entry, _parties = await _load_for_owner(reference, token)
    if entry["status"] == "offered":
        await waitlist_offers.settle_entry(entry["id"], now)  # confirmed or lapsed meanwhile
    return await _view(entry["reference"])


async def leave(
    reference: str, token: str | None, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """Leave the list. With an offer pending, the held seat is given back (and passed on)."""
    entry, _parties = await _load_for_owner(reference, token)
    await waitlist_offers.settle_entry(entry["id"], now)  # a confirmed offer is booked, not left
    async with write_transaction():
        if not await _end(entry["id"], "left", ("pending", "waiting", "offered"), now):
            raise DomainError("not-pending")
    if entry["status"] == "offered" and entry["appointment_id"] is not None:
        appointment = (
            await Appointment.select(Appointment.reference, Appointment.status)
            .where(Appointment.id == entry["appointment_id"])
            .first()
        )
        if appointment is not None and appointment["status"] == "pending_confirmation":
            try:  # the offer's appointment shares the entry's manage token
                await booking.cancel(appointment["reference"], token, now=now, settings=settings)
            except DomainError as exc:
                # Too close to the slot, or confirmed meanwhile: the couple keeps or
                # loses it as any booking; the hold lapses by itself otherwise.
                log.info("waitlist leave: offer not cancelled (%s)", exc.slug)
    return await _view(entry["reference"])


async def _view(reference: str) -> dict[str, Any]:
    loaded = await _load(reference)
    assert loaded is not None
    entry, parties = loaded
    offices = {
        o["id"]: o
        for o in await Office.select(
            Office.id, Office.code, Office.name_zh, Office.name_en, Office.timezone
        ).where(Office.id.is_in(entry["offices"]))
    }
    ahead = None
    if entry["status"] == "waiting":
        ahead = await WaitlistEntry.count().where(
            (WaitlistEntry.service == entry["service"])
            & (WaitlistEntry.day == entry["day"])
            & (WaitlistEntry.status == "waiting")
            & (
                (WaitlistEntry.joined_at < entry["joined_at"])
                | (
                    (WaitlistEntry.joined_at == entry["joined_at"])
                    & (WaitlistEntry.id < entry["id"])
                )
            )
        )
    return {
        "reference": entry["reference"],
        "status": entry["status"],
        "service": entry["service"],
        "date": entry["day"].isoformat(),
        "offices": [
            {
                "code": offices[i]["code"],
                "name_zh": offices[i]["name_zh"],
                "name_en": offices[i]["name_en"],
            }
            for i in entry["offices"]
            if i in offices
        ],
        "time_from": entry["time_from"],
        "time_to": entry["time_to"],
        "locale": entry["locale"],
        "ahead": ahead,
        "offer": await _offer_view(entry, offices),
        "parties": couple_codes.party_views(parties),
    }


async def _offer_view(entry: dict[str, Any], offices: dict[int, Any]) -> dict[str, Any] | None:
    if entry["appointment_id"] is None or entry["status"] not in ("offered", "booked"):
        return None
    appointment = (
        await Appointment.select(
            Appointment.reference, Appointment.status, Appointment.hold_expires_at, Appointment.slot
        )
        .where(Appointment.id == entry["appointment_id"])
        .first()
    )
    if appointment is None:
        return None
    slot = await load_slot(appointment["slot"])
    if slot is None or slot.office.id not in offices:
        return None
    tz = slot.office.tz
    expires = appointment["hold_expires_at"]
    return {
        "reference": appointment["reference"],
        "status": appointment["status"],
        "office": slot.office.code,
        "slot": slot_view(slot),
        "expires_at": expires.astimezone(tz).isoformat() if expires else None,
    }
