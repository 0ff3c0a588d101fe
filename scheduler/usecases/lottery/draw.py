"""The draw and what follows it (issue 7): a job, safe in several processes.

At the window's close the lottery row is claimed with a conditional UPDATE
(scheduled -> drawn) in the same transaction as everything the draw writes, so a
second process (or a second run) finds nothing to do, and a failed draw leaves
no trace and is retried by the next tick. The order comes from the committed seed
and the confirmed applications (scheduler/domain/lottery.py says exactly how);
winners get appointments as if booked: ``pending_confirmation`` with the
lottery's confirmation deadline as their hold, a code per party by SMS, and the
usual confirm (``POST /api/v1/appointments/{reference}/confirm``). A hold that
lapses is released by the booking module's ``expire_holds`` job; the next tick
here marks that winner ``lapsed`` and gives the freed seat to the next in the
draw order (``pass_on``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.query.functions.aggregate import Sum

from scheduler.db import seats
from scheduler.db.engine import insert_rows, write_transaction
from scheduler.db.lottery_tables import Lottery, LotteryApplication, LotteryOffice
from scheduler.db.records import PartyRecord, party_of
from scheduler.db.tables import (
    Appointment,
    IdClaim,
    Office,
    OfficeDay,
    OnsiteWindow,
    Party,
    Slot,
)
from scheduler.domain import lottery as rules
from scheduler.domain.calendar import onsite_window_start
from scheduler.kernel.security import new_code, new_reference
from scheduler.notify.texts import render_for, sms_office_name
from scheduler.settings import Settings
from scheduler.usecases.couples import holds
from scheduler.usecases.lottery.apply import expire_applications
from scheduler.usecases.offices.reschedule_apply import OUTBOX_COLUMNS
from scheduler.usecases.policy import policies
from scheduler.usecases.waitlist import offers as waitlist_offers

log = logging.getLogger("scheduler.lottery")

PEOPLE = 2
_CHUNK = 500


class SeatsChanged(RuntimeError):
    """A cap refused what the plan read a moment ago: roll back, retry next tick."""


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def _claim(lottery_id: int, now: datetime, *, draw: bool) -> dict[str, Any] | None:
    """Lock the lottery row for this transaction (PostgreSQL: concurrent runs wait
    here, then find the status changed); the draw also moves it to ``drawn``."""
    if draw:
        query = Lottery.update({Lottery.status: "drawn", Lottery.drawn_at: now}).where(
            (Lottery.id == lottery_id)
            & (Lottery.status == "scheduled")
            & (Lottery.closes_at <= now)
        )
        rows = await query.returning(Lottery.id)
    else:
        rows = await Lottery.raw(
            "UPDATE lottery SET drawn_at = drawn_at WHERE id = {} AND status = 'drawn'"
            " RETURNING id",
            lottery_id,
        )
    if not rows:
        return None
    row: dict[str, Any] | None = (
        await Lottery.select().where(Lottery.id == lottery_id).output(load_json=True).first()
    )
    return row


async def _offices(lottery_id: int) -> dict[int, dict[str, Any]]:
    ids = [
        r["office"]
        for r in await LotteryOffice.select(LotteryOffice.office).where(
            LotteryOffice.lottery == lottery_id
        )
    ]
    return {o["id"]: o for o in await Office.select().where(Office.id.is_in(ids or [-1]))}


async def _seats(lottery: dict[str, Any], offices: dict[int, dict[str, Any]]) -> rules.Seats:
    """What is free on the date at the lottery's offices, read inside the transaction."""
    ids = list(offices) or [-1]
    slots = await Slot.select().where(
        Slot.office.is_in(ids) & (Slot.day == lottery["day"]) & (Slot.service == lottery["service"])
    )
    rooms = []
    for s in slots:
        if s["blocked"]:
            continue
        tz = ZoneInfo(offices[s["office"]]["timezone"])
        cap = s["reduced_capacity"] if s["reduced_capacity"] is not None else s["capacity"]
        rooms.append(
            rules.Room(
                slot_id=s["id"],
                office_id=s["office"],
                start=s["start_at"].astimezone(tz).strftime("%H:%M"),
                window=onsite_window_start(s["start_at"], tz),
                free=cap - s["booked"],
            )
        )
    days = await OfficeDay.select().where(
        OfficeDay.office.is_in(ids) & (OfficeDay.day == lottery["day"])
    )
    # The day's count is the sum over its slots of every service (office_day.booked
    # is not kept where the slot caps keep the day's, issue 16).
    booked = {
        r["office"]: int(r["booked"] or 0)
        for r in await Slot.select(Slot.office, Sum(Slot.booked).as_alias("booked"))
        .where(Slot.office.is_in(ids) & (Slot.day == lottery["day"]))
        .group_by(Slot.office)
    }
    windows = sorted({r.window for r in rooms})
    hall = await OnsiteWindow.select().where(
        OnsiteWindow.office.is_in(ids)
        & OnsiteWindow.window_start.is_in(windows or [lottery["closes_at"]])
    )
    return rules.Seats(
        rooms=rooms,
        day_free={d["office"]: d["capacity"] - booked.get(d["office"], 0) for d in days},
        hall_free={(h["office"], h["window_start"]): h["capacity"] - h["people"] for h in hall},
        people=PEOPLE,
    )


async def _entries(lottery_id: int, statuses: tuple[str, ...]) -> dict[str, rules.Entry]:
    apps = await (
        LotteryApplication.select(
            LotteryApplication.id, LotteryApplication.reference, LotteryApplication.preferences
        )
        .where(
            (LotteryApplication.lottery == lottery_id)
            & LotteryApplication.status.is_in(list(statuses))
        )
        .output(load_json=True)
    )
    hashes: dict[int, list[str]] = {}
    for chunk in _chunks([a["id"] for a in apps]):
        for p in await Party.select(Party.application, Party.id_hash, Party.number_hash).where(
            Party.application.is_in(chunk)
        ):
            # Typed and whatever the type (issue 13.7): one person, one win, one booking.
            hashes.setdefault(p["application"], []).append(p["id_hash"])
            if p["number_hash"]:
                hashes[p["application"]].append("any:" + p["number_hash"])
    return {
        a["reference"]: rules.Entry(
            reference=a["reference"],
            id_hashes=tuple(sorted(hashes.get(a["id"], []))),
            preferences=tuple(rules.Preference(p["office"], p["start"]) for p in a["preferences"]),
        )
        for a in apps
    }


async def _booked_ids(service: str, entries: Iterable[rules.Entry]) -> frozenset[str]:
    """ID hashes already holding an active appointment of a one-per-ID service."""
    if service not in holds.ONE_ACTIVE_PER_ID:
        return frozenset()
    claims = sorted({f"{service}:{h}" for e in entries for h in e.id_hashes})
    held: set[str] = set()
    for chunk in _chunks(claims):
        held.update(
            r["claim"]
            for r in await IdClaim.select(IdClaim.claim).where(IdClaim.claim.is_in(chunk))
        )
    return frozenset(c.partition(":")[2] for c in held)


async def draw(lottery_id: int, now: datetime, settings: Settings) -> dict[str, int] | None:
    """Draw one lottery whose window has closed; None if there was nothing to do."""
    async with write_transaction():
        lottery = await _claim(lottery_id, now, draw=True)
        if lottery is None:
            return None
        # Codes not entered by the close: these applications are not in the draw.
        await LotteryApplication.update(
            {LotteryApplication.status: "unconfirmed", LotteryApplication.ended_at: now}
        ).where(
            (LotteryApplication.lottery == lottery_id)
            & (LotteryApplication.status == "pending_confirmation")
        )
        entries = await _entries(lottery_id, ("confirmed",))
        order = rules.draw_order(lottery["seed"], entries)
        await Lottery.update({Lottery.draw_order: order}).where(Lottery.id == lottery_id)
        await LotteryApplication.update({LotteryApplication.status: "waiting"}).where(
            (LotteryApplication.lottery == lottery_id) & (LotteryApplication.status == "confirmed")
        )
        result = await _award(lottery, [entries[r] for r in order], now, settings)
    return result | {"applications": len(order)}


async def _award(
    lottery: dict[str, Any], order: list[rules.Entry], now: datetime, settings: Settings
) -> dict[str, int]:
    """Seat ``order`` (waiting applications, in draw order) on what is free now."""
    offices = await _offices(lottery["id"])
    if not offices or not order:
        return {"won": 0, "ineligible": 0}
    seats = await _seats(lottery, offices)
    allocation = rules.allocate(
        order, seats, already_booked=await _booked_ids(lottery["service"], order)
    )
    if allocation.ineligible:
        for chunk in _chunks(sorted(allocation.ineligible)):
            await LotteryApplication.update(
                {LotteryApplication.status: "ineligible", LotteryApplication.ended_at: now}
            ).where(LotteryApplication.reference.is_in(chunk))
    if allocation.awards:
        await _make_appointments(lottery, offices, allocation.awards, now, settings)
    return {"won": len(allocation.awards), "ineligible": len(allocation.ineligible)}


async def _take(
    awards: dict[str, int], slots: dict[int, dict[str, Any]], tzs: dict[int, ZoneInfo]
) -> None:
    """The awarded seats against all three caps (scheduler/db/seats.py: one
    conditional UPDATE per counter row, in the global lock order)."""
    per_slot = Counter(awards.values())
    per_day = Counter((slots[s]["office"], slots[s]["day"]) for s in awards.values())
    per_window = Counter(
        (slots[s]["office"], onsite_window_start(slots[s]["start_at"], tzs[slots[s]["office"]]))
        for s in awards.values()
    )
    try:
        await seats.take_counts(
            per_slot, per_day, {key: PEOPLE * k for key, k in per_window.items()}
        )
    except seats.CountersChanged as exc:
        raise SeatsChanged(str(exc)) from exc


async def _make_appointments(
    lottery: dict[str, Any],
    offices: dict[int, dict[str, Any]],
    awards: dict[str, int],
    now: datetime,
    settings: Settings,
) -> None:
    """Appointments as if booked, for every award, with set-based inserts."""
    slots = {
        s["id"]: s for s in await Slot.select().where(Slot.id.is_in(sorted(set(awards.values()))))
    }
    tzs = {i: ZoneInfo(o["timezone"]) for i, o in offices.items()}
    await _take(awards, slots, tzs)
    apps = {
        a["reference"]: a
        for a in await LotteryApplication.select().where(
            LotteryApplication.reference.is_in(list(awards))
        )
    }
    tz = next(iter(tzs.values()))
    deadline = rules.confirm_deadline(now, lottery["confirm_hours"], lottery["day"], tz)
    rows, references = [], {}
    for ref, slot_id in awards.items():
        office = offices[slots[slot_id]["office"]]
        references[ref] = new_reference(office["code"])
        rows.append(
            holds.appointment_row(
                reference=references[ref],
                # The application's token manages the appointment too: the couple
                # already holds it.
                manage_token_hash=apps[ref]["manage_token_hash"],
                office_id=office["id"],
                slot_id=slot_id,
                service=lottery["service"],
                locale=apps[ref]["locale"],
                people=PEOPLE,
                expires=deadline,
                now=now,
            )
        )
    inserted = await Appointment.insert(*rows).returning(Appointment.id, Appointment.reference)
    by_reference = {r["reference"]: r for r in inserted}
    appointment_of = {ref: by_reference[references[ref]] for ref in awards}
    parties = await Party.select().where(Party.application.is_in([a["id"] for a in apps.values()]))
    by_app: dict[int, list[PartyRecord]] = {}
    for p in parties:
        by_app.setdefault(p["application"], []).append(party_of(p))
    await _mark_won({apps[ref]["id"]: appointment_of[ref]["id"] for ref in awards})
    # Plain rows, one prepared statement per table (Piccolo's per-row objects cost
    # more than the database here, and on SQLite this transaction holds the lock).
    party_rows: list[tuple[object, ...]] = []
    claim_rows: list[IdClaim] = []
    events: list[tuple[object, ...]] = []
    messages: list[tuple[object, ...]] = []
    validity = settings.sms_validity_seconds
    terms = await policies.sms_terms(settings)
    for ref, slot_id in awards.items():
        app, appt = apps[ref], appointment_of[ref]
        slot, office = slots[slot_id], offices[slots[slot_id]["office"]]
        event = holds.held_event_values(appt["id"], slot_id, "lottery", now)
        events.append(tuple(event[c] for c in holds.EVENT_COLUMNS))
        local = slot["start_at"].astimezone(tzs[office["id"]])
        held = [holds.HeldParty.from_party(r) for r in sorted(by_app[app["id"]], key=_role)]
        # A claim held since our read (a booking racing the draw) fails the insert and
        # rolls the draw back; the next tick draws again and finds it.
        claim_rows += [
            IdClaim(claim=c, appointment=appt["id"])
            for c in holds.id_claims(lottery["service"], (x for h in held for x in h.claim_hashes))
        ]
        for h in held:
            code = new_code()
            # The application's sealed, masked and hashed ID forms, as a booking stores them.
            values = holds.party_values(appt["id"], h, code, settings.secret_key)
            party_rows.append(tuple(values[c] for c in holds.PARTY_COLUMNS))
            payload = holds.code_payload(
                code,
                appt["reference"],
                {
                    "office": sms_office_name(office, app["locale"]),
                    "date": slot["day"].isoformat(),
                    "start": f"{local:%H:%M}",
                    "deadline": f"{deadline.astimezone(tzs[office['id']]):%m-%d %H:%M}",
                },
            )
            messages.append(
                (
                    # One text per party and appointment, whoever runs the draw.
                    f"appointment:{appt['id']}:lottery_won:{h.role}",
                    h.phone,
                    "lottery_won",
                    app["locale"],
                    json.dumps(payload, ensure_ascii=False),
                    render_for("lottery_won", app["locale"], payload, terms.rule_for(h.phone)),
                    "pending",
                    now,  # urgent: a code, sent at once
                    0,
                    now,
                    True,
                    validity,
                    False,
                    appt["id"],
                )
            )
    await insert_rows("party", holds.PARTY_COLUMNS, party_rows)
    for chunk in _chunks(claim_rows):
        await IdClaim.insert(*chunk)
    await insert_rows("appointment_event", holds.EVENT_COLUMNS, events)
    await insert_rows("outbox_message", OUTBOX_COLUMNS, messages)


def _role(party: PartyRecord) -> str:
    return party.role


async def _mark_won(appointment_of: dict[int, int]) -> None:
    """Waiting applications -> won with their appointment, one statement per chunk."""
    items = sorted(appointment_of.items())
    for chunk in _chunks(items):
        # Typed: PostgreSQL reads an untyped parameter in a CASE as text.
        cases = " ".join("WHEN CAST({} AS INTEGER) THEN CAST({} AS INTEGER)" for _ in chunk)
        marks = ", ".join("{}" for _ in chunk)
        done = await LotteryApplication.raw(
            "UPDATE lottery_application SET status = 'won',"  # noqa: S608 - placeholders only
            f" appointment_id = CASE id {cases} END"
            f" WHERE status = 'waiting' AND id IN ({marks}) RETURNING id",
            *[v for pair in chunk for v in pair],
            *[app_id for app_id, _ in chunk],
        )
        if len(done) != len(chunk):
            raise SeatsChanged("an application changed under the draw")


async def pass_on(lottery_id: int, now: datetime, settings: Settings) -> dict[str, int] | None:
    """Winners whose appointment ended unconfirmed (or was cancelled) lapse, and the
    seats free on the date go to the waiting applications in draw order."""
    async with write_transaction():
        lottery = await _claim(lottery_id, now, draw=False)
        if lottery is None:
            return None
        offices = await _offices(lottery_id)
        tz = ZoneInfo(next(iter(offices.values()))["timezone"]) if offices else None
        if tz is None or not rules.passing_on(now, lottery["day"], tz):
            return None
        won = await LotteryApplication.select(
            LotteryApplication.id, LotteryApplication.appointment_id
        ).where((LotteryApplication.lottery == lottery_id) & (LotteryApplication.status == "won"))
        ended = {
            a["id"]
            for a in await Appointment.select(Appointment.id).where(
                Appointment.id.is_in([w["appointment_id"] for w in won] or [-1])
                & Appointment.status.is_in(["expired", "cancelled"])
            )
        }
        lapsed = [w["id"] for w in won if w["appointment_id"] in ended]
        if lapsed:
            await LotteryApplication.update(
                {LotteryApplication.status: "lapsed", LotteryApplication.ended_at: now}
            ).where(LotteryApplication.id.is_in(lapsed))
        entries = await _entries(lottery_id, ("waiting",))
        order = [entries[r] for r in lottery["draw_order"] if r in entries]
        result = await _award(lottery, order, now, settings)
    return result | {"lapsed": len(lapsed)}


async def tick(now: datetime, settings: Settings) -> dict[str, int]:
    """The ``lotteries`` job: lapse unconfirmed applications, draw closed lotteries,
    pass freed seats on. Each lottery in its own transaction."""
    done: Counter[str] = Counter(expired=await expire_applications(now))
    due = await Lottery.select(Lottery.id).where(
        (Lottery.status == "scheduled") & (Lottery.closes_at <= now)
    )
    for row in due:
        if (result := await draw(row["id"], now, settings)) is not None:
            done.update(result | {"drawn": 1})
            done.update(offered=await _to_waiting_list(row["id"], now, settings))
    drawn = await Lottery.select(Lottery.id).where(
        (Lottery.status == "drawn") & (Lottery.day >= (now.date()))
    )
    for row in drawn:
        if (result := await pass_on(row["id"], now, settings)) is not None:
            done.update({k: v for k, v in result.items() if k != "applications"})
            done.update(offered=await _to_waiting_list(row["id"], now, settings))
    return {k: v for k, v in done.items() if v}


async def _to_waiting_list(lottery_id: int, now: datetime, settings: Settings) -> int:
    """Seats the draw order could not fill (nobody left wants them) go to the
    waiting list; it leaves alone the slots the lottery still reserves
    (``calendar.lottery_days.reserved_slots``). After the commit; never raises."""
    lottery = (
        await Lottery.select(Lottery.day, Lottery.service).where(Lottery.id == lottery_id).first()
    )
    if lottery is None:
        return 0
    offered = 0
    for office_id in await _offices(lottery_id):
        try:
            offered += await waitlist_offers.offer_freed_seats(
                office_id, lottery["service"], lottery["day"], now, settings
            )
        except Exception:
            log.exception("waiting-list offers after lottery %s failed", lottery_id)
    return offered
