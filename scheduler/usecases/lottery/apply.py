"""Couples' use cases of a lottery: apply, confirm (each party, by SMS code),
view, withdraw. One transaction each.

One application per ID number and lottery, whichever partner it names: a unique
claim row per ID (``"<lottery>:<keyed hash>"``) is inserted with the application,
so two racing applications naming the same person cannot both succeed. An
application whose codes were not entered in time gives its claims back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.appointments import load as load_appointment
from scheduler.db.appointments import public_view as appointment_view
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.lottery_tables import LotteryApplication, LotteryClaim
from scheduler.db.records import PartyRecord
from scheduler.db.tables import Appointment, Slot
from scheduler.domain import lottery as rules
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
from scheduler.usecases.calendar.lottery_days import load as load_lottery
from scheduler.usecases.couples import codes as couple_codes
from scheduler.usecases.couples import confirmation
from scheduler.usecases.couples.partners import PartyInput
from scheduler.usecases.policy import policies, ratelimits
from scheduler.usecases.policy import rules as registry_rules

REFERENCE_PREFIX = "LOT"
LIVE = ("pending_confirmation", "confirmed")


@dataclass(frozen=True)
class PreferenceInput:
    office: str
    start: str | None = None  # local "HH:MM"; None: any time that day


@dataclass(frozen=True)
class ApplicationInput:
    party_a: PartyInput
    party_b: PartyInput
    preferences: list[PreferenceInput]
    locale: str = "zh-Hans"


async def _preferences(
    lottery: dict[str, Any], offices: list[dict[str, Any]], prefs: list[PreferenceInput]
) -> list[dict[str, Any]]:
    """Preferences as stored ({office id, start}); each names an office of the lottery
    and, if a time, the start of one of its slots that day."""
    if not 1 <= len(prefs) <= rules.MAX_PREFERENCES:
        raise DomainError("invalid-input", field="preferences", reason="lottery-preferences")
    by_code = {o["code"]: o for o in offices}
    stored: list[dict[str, Any]] = []
    for pref in prefs:
        office = by_code.get(pref.office.strip().upper())
        if office is None:
            raise DomainError("invalid-input", field="preferences", reason="lottery-preference")
        start = pref.start or None
        if start is not None:
            tz = ZoneInfo(office["timezone"])
            starts = {
                s["start_at"].astimezone(tz).strftime("%H:%M")
                for s in await Slot.select(Slot.start_at).where(
                    (Slot.office == office["id"])
                    & (Slot.day == lottery["day"])
                    & (Slot.service == lottery["service"])
                )
            }
            if start not in starts:
                raise DomainError("invalid-input", field="preferences", reason="lottery-preference")
        item = {"office": office["id"], "start": start}
        if item in stored:
            raise DomainError("invalid-input", field="preferences", reason="lottery-preference")
        stored.append(item)
    return stored


def _accepting(lottery: dict[str, Any], now: datetime) -> None:
    if lottery["status"] != "scheduled" or not lottery["opens_at"] <= now < lottery["closes_at"]:
        raise DomainError("lottery-closed")


async def apply(
    lottery_id: int, data: ApplicationInput, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """A couple applies; each party is texted a code. Returns the view and the token."""
    if data.locale not in LOCALES:
        raise DomainError("invalid-input", field="locale", reason="locale")
    parties = couple_codes.clean_couple(data.party_a, data.party_b)
    lottery, offices = await load_lottery(lottery_id)
    if lottery["status"] == "cancelled":
        raise DomainError("not-found")
    _accepting(lottery, now)
    await couple_codes.refuse_phone_regions([o["code"] for o in offices], parties)
    prefs = await _preferences(lottery, offices, data.preferences)
    # The booking's entry rules, for every office the couple would accept: a winner
    # must not be handed a seat the desk will refuse.
    wanted = {p["office"] for p in prefs}
    for office in (o for o in offices if o["id"] in wanted):
        await registry_rules.admit(
            lottery["service"],
            lottery["day"],
            [(role, p.id_type, p.id_number) for role, p in parties],
            now,
            tz=ZoneInfo(office["timezone"]),
            designated=bool(office["designated"]),
        )
    # Sealed, masked and the same keyed hash as ``party.id_hash`` (the draw checks
    # booking claims with it); the plaintext number is not kept.
    ids = couple_codes.sealed_ids(settings, parties)
    claims = [f"{lottery_id}:{h}" for h in couple_codes.claim_hashes(ids)]
    reference, token = new_reference(REFERENCE_PREFIX), new_manage_token()
    codes = couple_codes.new_codes()
    hold_until = min(now + timedelta(minutes=settings.hold_minutes), lottery["closes_at"])
    try:
        async with write_transaction():
            # Per ID and phone, counted with the codes this sends (rolled back with
            # it), as for a booking or a waiting-list entry.
            await ratelimits.check_parties(settings, [p for _, p in parties], now)
            await _release_stale(now, claims)
            rows = await LotteryApplication.insert(
                LotteryApplication(
                    lottery=lottery_id,
                    reference=reference,
                    manage_token_hash=hash_token(token),
                    locale=data.locale,
                    status="pending_confirmation",
                    preferences=prefs,
                    hold_expires_at=hold_until,
                    created_at=now,
                )
            ).returning(LotteryApplication.id)
            app_id = rows[0]["id"]
            await LotteryClaim.insert(*[LotteryClaim(claim=c, application=app_id) for c in claims])
            key, minutes = f"lottery-application:{app_id}", settings.hold_minutes
            await confirmation.start(
                confirmation.Owner("application", app_id),
                couple_codes.people(parties, ids),
                codes,
                couple_codes.code_text(key, "lottery_code", data.locale, minutes),
                reference=reference,
                now=now,
                secret_key=settings.secret_key,
                terms=await policies.sms_terms(settings),
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise DomainError("already-applied") from exc
        raise
    return await view(lottery_id, reference, token, settings) | {"manage_token": token}


async def _release_stale(now: datetime, claims: list[str]) -> None:
    """Claims of these IDs held by an application whose codes lapsed: expire it
    now rather than wait for the job, so the couple can apply again at once."""
    held = await LotteryClaim.select(LotteryClaim.application).where(
        LotteryClaim.claim.is_in(claims)
    )
    stale = [
        r["id"]
        for r in await LotteryApplication.select(LotteryApplication.id).where(
            LotteryApplication.id.is_in([h["application"] for h in held] or [-1])
            & (LotteryApplication.status == "pending_confirmation")
            & (LotteryApplication.hold_expires_at <= now)
        )
    ]
    await _end(stale, "expired", now, ("pending_confirmation",))


async def _end(
    app_ids: list[int], status: str, now: datetime, from_statuses: tuple[str, ...]
) -> int:
    """End applications (their claims go back). Returns how many changed."""
    if not app_ids:
        return 0
    ended = await (
        LotteryApplication.update(
            {
                LotteryApplication.status: status,
                LotteryApplication.ended_at: now,
                LotteryApplication.hold_expires_at: None,
            }
        )
        .where(
            LotteryApplication.id.is_in(app_ids)
            & LotteryApplication.status.is_in(list(from_statuses))
        )
        .returning(LotteryApplication.id)
    )
    ids = [r["id"] for r in ended]
    if ids:
        await LotteryClaim.delete().where(LotteryClaim.application.is_in(ids))
    return len(ids)


async def expire_applications(now: datetime, *, batch: int = 500) -> int:
    """Applications whose codes were not entered in time (job)."""
    due = await (
        LotteryApplication.select(LotteryApplication.id)
        .where(
            (LotteryApplication.status == "pending_confirmation")
            & (LotteryApplication.hold_expires_at <= now)
        )
        .limit(batch)
    )
    if not due:
        return 0
    async with write_transaction():
        return await _end([r["id"] for r in due], "expired", now, ("pending_confirmation",))


async def _load(lottery_id: int, reference: str) -> tuple[dict[str, Any], list[PartyRecord]]:
    if not reference.isprintable():
        raise DomainError("not-found")
    row = await (
        LotteryApplication.select()
        .where(
            (LotteryApplication.reference == normalize_reference(reference))
            & (LotteryApplication.lottery == lottery_id)
        )
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise DomainError("not-found")
    return row, await confirmation.load(confirmation.Owner("application", row["id"]))


async def _load_for_owner(
    lottery_id: int, reference: str, token: str | None
) -> tuple[dict[str, Any], list[PartyRecord]]:
    row, parties = await _load(lottery_id, reference)
    if not token or not tokens_match(token, row["manage_token_hash"]):
        raise DomainError("not-found")  # never reveal that a reference exists
    return row, parties


async def confirm(
    lottery_id: int, reference: str, role: str, code: str, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """One party confirms with their code; both confirmed enters the draw."""
    couple_codes.check_role(role)
    outcome: DomainError | None = None
    async with write_transaction():
        row, parties = await _load(lottery_id, reference)
        lottery, _ = await load_lottery(lottery_id)
        party = next(p for p in parties if p.role == role)
        owner = confirmation.Owner("application", row["id"])
        status = row["status"]
        if status == "pending_confirmation" and row["hold_expires_at"] <= now:
            await _end([row["id"]], "expired", now, ("pending_confirmation",))
            status = "expired"
        if status != "pending_confirmation" or party.confirmed_at is not None:
            # Told only to whoever has the code; else as an unknown reference (issue 13.5).
            if not await confirmation.proves_code(owner, party, code, settings):
                outcome = DomainError("not-found")
            elif status == "expired":
                outcome = DomainError("hold-expired")
            elif party.confirmed_at is None:
                outcome = DomainError("not-pending")
            # Else already confirmed: a retried request gets the same answer.
        elif now >= lottery["closes_at"]:
            raise DomainError("lottery-closed")
        else:
            outcome, both = await confirmation.enter_code(
                owner, party, parties, code, now=now, settings=settings
            )
            if both:
                await LotteryApplication.update(
                    {
                        LotteryApplication.status: "confirmed",
                        LotteryApplication.confirmed_at: now,
                        LotteryApplication.hold_expires_at: None,
                    }
                ).where(
                    (LotteryApplication.id == row["id"])
                    & (LotteryApplication.status == "pending_confirmation")
                )
    if outcome is not None:
        raise outcome  # after commit: the expiry or the failed attempt is kept
    return await _view(*await _load(lottery_id, reference), settings)


async def withdraw(
    lottery_id: int, reference: str, token: str | None, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """Withdraw before the window closes (the IDs may then apply again)."""
    async with write_transaction():
        row, _parties = await _load_for_owner(lottery_id, reference, token)
        lottery, _ = await load_lottery(lottery_id)
        if row["status"] not in LIVE:
            raise DomainError("not-pending")
        if now >= lottery["closes_at"] or lottery["status"] != "scheduled":
            raise DomainError("lottery-closed")
        if not await _end([row["id"]], "withdrawn", now, LIVE):
            raise DomainError("not-pending")
    return await _view(*await _load(lottery_id, reference), settings)


async def view(
    lottery_id: int, reference: str, token: str | None, settings: Settings
) -> dict[str, Any]:
    return await _view(*await _load_for_owner(lottery_id, reference, token), settings)


async def _view(
    row: dict[str, Any], parties: list[PartyRecord], settings: Settings
) -> dict[str, Any]:
    lottery, offices = await load_lottery(row["lottery"])
    tz = ZoneInfo(offices[0]["timezone"] if offices else "Asia/Shanghai")
    codes = {o["id"]: o["code"] for o in offices}
    order: list[str] = list(lottery["draw_order"] or []) if lottery["status"] == "drawn" else []
    appointment = None
    if row["appointment_id"] is not None:
        ref = (
            await Appointment.select(Appointment.reference)
            .where(Appointment.id == row["appointment_id"])
            .first()
        )
        loaded = await load_appointment(ref["reference"]) if ref else None
        appointment = appointment_view(loaded) if loaded else None
    return {
        "reference": row["reference"],
        "lottery": row["lottery"],
        "date": lottery["day"].isoformat(),
        "status": row["status"],
        "locale": row["locale"],
        "preferences": [
            {"office": codes.get(p["office"], ""), "start": p["start"]} for p in row["preferences"]
        ],
        "hold_expires_at": row["hold_expires_at"].astimezone(tz).isoformat()
        if row["hold_expires_at"]
        else None,
        "position": order.index(row["reference"]) + 1 if row["reference"] in order else None,
        "parties": couple_codes.party_views(parties),
        "appointment": appointment,
    }
