"""Waiting list, seat side: when a seat frees, offer it to the next couple in join order.

An offer IS a held appointment (``pending_confirmation``) for the couple, created in
the transaction that marks their entry ``offered`` and takes the seat with the
ordinary conditional UPDATEs (capacity.take_seat). So an offered seat is counted
like any booking, cannot be taken by anyone else, and cannot be offered twice:
two processes racing for the same entry collide on the entry's conditional
UPDATE, two racing for the same seat on the slot counter. Both partners get an SMS
code and confirm through the ordinary booking endpoints within the offer time; a
lapsed offer expires like any hold (booking.expire_holds), which gives the seat
back and calls ``seat_freed`` again, so the seat passes to the next couple.

Triggers: ``seat_freed`` right after the commit of whatever gave a seat back
(cancel, move, expiry), ``offer_freed_seats`` for other modules (the lottery, once
its own draw order is exhausted), and ``run`` every few seconds as a safety net
(a crashed hook, a capacity raise, a lifted blackout).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.records import SlotRecord, office_of
from scheduler.db.seats import Seat, take_seat
from scheduler.db.tables import IdClaim, Office, Party, Slot
from scheduler.db.waitlist_tables import WaitlistClaim, WaitlistEntry
from scheduler.domain import waitlist as rules
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import new_code, new_reference
from scheduler.notify.texts import sms_office_name
from scheduler.settings import Settings
from scheduler.usecases.calendar.lottery_days import reserved_slots
from scheduler.usecases.couples import confirmation, holds
from scheduler.usecases.couples.holds import ONE_ACTIVE_PER_ID
from scheduler.usecases.policy import policies

log = logging.getLogger("scheduler.waitlist")
# Re-reads per call after losing a race; each round either offers a seat or learns
# that someone else took it, so this only bounds pathological contention.
MAX_ROUNDS = 200


async def seat_freed(seat: Seat, service: str, now: datetime, settings: Settings) -> None:
    """Hook for booking, after the commit of a change that gave ``seat`` back. Never
    raises: the periodic job offers whatever a failed hook left."""
    try:
        await offer_freed_seats(seat.office_id, service, seat.day, now, settings)
    except Exception:
        log.exception("waitlist offer after a freed seat failed; the job will retry")


async def offer_freed_seats(
    office_id: int, service: str, day: date, now: datetime, settings: Settings
) -> int:
    """Offer every free seat of one office, service and day to waiting couples in
    join order. Returns the number of offers made. Safe to call from any process at
    any time (also when nothing is free)."""
    await settle_day(service, day, now)
    made = 0
    for _ in range(MAX_ROUNDS):
        free, tz = await _free_slots(office_id, service, day, now)
        if not free:
            break
        waiting = await _waiting(office_id, service, day, settings)
        pick = rules.next_offer(waiting, free, now, settings.waitlist_offer_minutes)
        if pick is None:
            break
        outcome = await _offer(pick[0].entry_id, pick[1], tz, service, day, now, settings)
        if outcome == "offered":
            made += 1
        elif outcome == "day-full":
            break  # the office-day cap binds: no slot of this day has a seat
    return made


async def offer_for_entry(entry_id: int, now: datetime, settings: Settings) -> int:
    """A couple just took its place: offer them a seat if one is free and nobody
    ahead of them fits it."""
    entry = (
        await WaitlistEntry.select()
        .where(WaitlistEntry.id == entry_id)
        .first()
        .output(load_json=True)
    )
    if entry is None:
        return 0
    made = 0
    for office_id in entry["offices"]:
        made += await offer_freed_seats(office_id, entry["service"], entry["day"], now, settings)
    return made


async def _free_slots(
    office_id: int, service: str, day: date, now: datetime
) -> tuple[list[rules.FreeSlot], ZoneInfo]:
    """Slots with a free seat, except those a lottery still reserves for its own
    draw order (on a lottery date, freed seats go to the draw order first)."""
    office = await Office.select(Office.timezone).where(Office.id == office_id).first()
    tz = ZoneInfo(office["timezone"] if office else "Asia/Shanghai")
    rows = await Slot.raw(
        "SELECT id, start_at FROM slot WHERE office = {} AND service = {} AND day = {}"
        " AND NOT blocked AND booked < COALESCE(reduced_capacity, capacity)",
        office_id,
        service,
        day,
    )
    reserved = await reserved_slots(office_id, service, day, now)
    free = [
        rules.FreeSlot(
            id=r["id"],
            office_id=office_id,
            start_at=r["start_at"],
            local_start=r["start_at"].astimezone(tz).time().replace(tzinfo=None),
        )
        for r in rows
        if r["id"] not in reserved
    ]
    return free, tz


async def _waiting(
    office_id: int, service: str, day: date, settings: Settings
) -> list[rules.Waiting]:
    """Waiting couples that listed this office, in join order; couples whose ID
    holds an active appointment of a one-per-ID service are passed over (they keep
    their place for when that appointment ends)."""
    entries = (
        await WaitlistEntry.select(
            WaitlistEntry.id, WaitlistEntry.offices, WaitlistEntry.time_from, WaitlistEntry.time_to
        )
        .where(
            (WaitlistEntry.service == service)
            & (WaitlistEntry.day == day)
            & (WaitlistEntry.status == "waiting")
        )
        .order_by(WaitlistEntry.joined_at)
        .order_by(WaitlistEntry.id)
        .output(load_json=True)
    )
    entries = [e for e in entries if office_id in e["offices"]]
    if not entries:
        return []
    busy: set[int] = set()
    if service in ONE_ACTIVE_PER_ID:
        parties = await Party.select(Party.entry, Party.id_hash, Party.number_hash).where(
            Party.entry.is_in([e["id"] for e in entries])
        )
        # Typed and whatever the type (issue 13.7), as the offer's claims will be.
        claims = {f"{service}:{p['id_hash']}": p["entry"] for p in parties}
        claims |= {
            f"{service}:any:{p['number_hash']}": p["entry"] for p in parties if p["number_hash"]
        }
        held = await IdClaim.select(IdClaim.claim).where(IdClaim.claim.is_in(list(claims)))
        busy = {claims[h["claim"]] for h in held}
    out = []
    for e in entries:
        if e["id"] in busy:
            continue
        window = rules.parse_time_range(e["time_from"], e["time_to"])
        preference = rules.Preference(
            offices=tuple(e["offices"]),
            time_from=window[0] if window else None,
            time_to=window[1] if window else None,
        )
        out.append(rules.Waiting(entry_id=e["id"], preference=preference))
    return out


async def _offer(
    entry_id: int,
    free: rules.FreeSlot,
    tz: ZoneInfo,
    service: str,
    day: date,
    now: datetime,
    settings: Settings,
) -> str:
    """One offer in one transaction: ``offered``, or ``raced`` (someone else got the
    entry or the seat first: read again), or ``day-full``."""
    slot = await Slot.select().where(Slot.id == free.id).first()
    office = await Office.select().where(Office.id == free.office_id).first()
    parties = await confirmation.load(confirmation.Owner("entry", entry_id))
    if slot is None or office is None or len(parties) != 2:
        return "raced"
    seat = SlotRecord.from_row(slot, office_of(office)).seat(people=2)
    # Copied as stored on the list: sealed, masked and hashed as a booking stores them.
    held = [holds.HeldParty.from_party(p) for p in parties]
    codes = {p.role: new_code() for p in held}
    minutes = settings.waitlist_offer_minutes
    expires = now + timedelta(minutes=minutes)
    reference = new_reference(office["code"])
    try:
        async with write_transaction():
            # The entry first: of two processes offering to the same couple, one
            # changes this row and the other finds nothing to change.
            marked = (
                await WaitlistEntry.update(
                    {WaitlistEntry.status: "offered", WaitlistEntry.offered_at: now}
                )
                .where((WaitlistEntry.id == entry_id) & (WaitlistEntry.status == "waiting"))
                .returning(WaitlistEntry.manage_token_hash, WaitlistEntry.locale)
            )
            if not marked:
                return "raced"
            locale = marked[0]["locale"]
            appointment_id = await holds.insert_appointment(
                holds.appointment_row(
                    reference=reference,
                    # The couple manages the offered appointment with their list token.
                    manage_token_hash=marked[0]["manage_token_hash"],
                    office_id=office["id"],
                    slot_id=slot["id"],
                    service=service,
                    locale=locale,
                    people=2,
                    expires=expires,
                    now=now,
                )
            )
            await WaitlistEntry.update({WaitlistEntry.appointment_id: appointment_id}).where(
                WaitlistEntry.id == entry_id
            )
            await holds.write_held(
                appointment_id,
                slot_id=slot["id"],
                claims=holds.id_claims(service, (h for p in held for h in p.claim_hashes)),
                parties=held,
                codes=codes,
                actor="waitlist",
                text=holds.CodeText(
                    template="waitlist_offer",
                    key=lambda role: f"waitlist:{entry_id}:offer:{appointment_id}:{role}",
                    locale=locale,
                    payload={
                        "office": sms_office_name(office, locale),
                        "date": day.isoformat(),
                        "start": slot["start_at"].astimezone(tz).strftime("%H:%M"),
                        "minutes": minutes,
                    },
                    validity_seconds=minutes * 60,
                ),
                reference=reference,
                now=now,
                secret_key=settings.secret_key,
                terms=await policies.sms_terms(settings),
            )
            # The counters last (the contended rows), as in booking.hold.
            await take_seat(seat)
    except DomainError as exc:
        return "day-full" if exc.slug == "day-full" else "raced"
    except Exception as exc:
        if is_unique_violation(exc):  # the couple booked elsewhere a moment ago
            return "raced"
        raise
    return "offered"


_SETTLE_SQL = (
    "SELECT e.id, a.status FROM waitlist_entry e JOIN appointment a ON a.id = e.appointment_id"
    " WHERE e.status = 'offered'"
)


async def _settle(rows: list[dict[str, Any]], now: datetime) -> int:
    changed = 0
    for row in rows:
        outcome = rules.outcome_of_offer(row["status"])
        if outcome is None:
            continue
        async with write_transaction():
            done = (
                await WaitlistEntry.update(
                    {WaitlistEntry.status: outcome, WaitlistEntry.ended_at: now}
                )
                .where((WaitlistEntry.id == row["id"]) & (WaitlistEntry.status == "offered"))
                .returning(WaitlistEntry.id)
            )
            if done:
                await WaitlistClaim.delete().where(WaitlistClaim.entry == row["id"])
                changed += 1
    return changed


async def settle_day(service: str, day: date, now: datetime) -> int:
    """Offered entries whose appointment was confirmed become ``booked``; those whose
    offer lapsed (expired or cancelled) become ``lapsed`` and leave the list."""
    rows = await WaitlistEntry.raw(_SETTLE_SQL + " AND e.service = {} AND e.day = {}", service, day)
    return await _settle(rows, now)


async def settle_entry(entry_id: int, now: datetime) -> int:
    return await _settle(await WaitlistEntry.raw(_SETTLE_SQL + " AND e.id = {}", entry_id), now)


async def run(now: datetime, settings: Settings) -> int:
    """The ``waitlist_offers`` job: settle offers, end stale entries, offer free seats.
    Every step is a conditional UPDATE, so several processes may run it at once."""
    await _settle(await WaitlistEntry.raw(_SETTLE_SQL), now)
    today = now.astimezone(ZoneInfo(settings.default_timezone)).date()
    stale = await WaitlistEntry.select(WaitlistEntry.id).where(
        ((WaitlistEntry.status == "pending") & (WaitlistEntry.verify_expires_at <= now))
        | ((WaitlistEntry.status == "waiting") & (WaitlistEntry.day <= today))
    )
    for row in stale:
        async with write_transaction():
            ended = (
                await WaitlistEntry.update(
                    {WaitlistEntry.status: "ended", WaitlistEntry.ended_at: now}
                )
                .where(
                    (WaitlistEntry.id == row["id"])
                    & WaitlistEntry.status.is_in(["pending", "waiting"])
                )
                .returning(WaitlistEntry.id)
            )
            if ended:
                await WaitlistClaim.delete().where(WaitlistClaim.entry == row["id"])
    wanted = (
        await WaitlistEntry.select(WaitlistEntry.service, WaitlistEntry.day, WaitlistEntry.offices)
        .where((WaitlistEntry.status == "waiting") & (WaitlistEntry.day > today))
        .output(load_json=True)
    )
    targets = sorted({(o, w["service"], w["day"]) for w in wanted for o in w["offices"]})
    made = 0
    for office_id, service, day in targets:
        made += await offer_freed_seats(office_id, service, day, now, settings)
    return made
