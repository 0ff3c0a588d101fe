"""Delivery status from Twilio's callbacks, applied so that it never goes backwards.

Callbacks arrive out of order and more than once. Each status has a rank; a row
only moves to a higher rank, and a final status (delivered, undelivered, failed)
is never replaced. Every callback is stored first, so one that overtakes the
dispatcher's own write of the SID is applied as soon as that SID is recorded;
once applied, its events are deleted (the outbox row keeps the status).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.columns import Column

from scheduler.db.engine import write_transaction
from scheduler.db.tables import Appointment, DeliveryEvent, OutboxMessage
from scheduler.domain.sms import after_quiet_hours
from scheduler.notify.scrub import is_scrubbed
from scheduler.notify.terms import SmsTerms
from scheduler.settings import Settings

# Twilio MessageStatus -> our rank. accepted/queued/sending all mean "with Twilio".
RANKS = {
    "accepted": 1,
    "queued": 1,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "read": 3,
}
FINAL = frozenset({"delivered", "undelivered", "failed"})
# Carrier-side failures where trying again later (or phoning) can still reach the couple.
FALLBACK_CODES = frozenset({"30001", "30003", "30005", "30006", "30007"})


def _ours(twilio_status: str) -> str:
    # "read" (WhatsApp/RCS) implies delivered; the rest we store as Twilio names them.
    return "delivered" if twilio_status == "read" else twilio_status


async def record_callback(
    sid: str,
    status: str,
    error_code: str | None,
    now: datetime,
    settings: Settings,
    terms: SmsTerms,
) -> bool:
    """Store one callback and apply it; False if the SID is unknown (yet)."""
    async with write_transaction():
        await DeliveryEvent.insert(
            DeliveryEvent(provider_sid=sid, status=status, error_code=error_code, received_at=now)
        )
    return await apply_status(sid, status, error_code, now, settings, terms)


async def apply_pending_events(
    sid: str, now: datetime, settings: Settings, terms: SmsTerms
) -> None:
    """Apply callbacks that arrived before the dispatcher recorded this SID."""
    events = await DeliveryEvent.select().where(
        (DeliveryEvent.provider_sid == sid) & DeliveryEvent.applied.eq(False)
    )
    for event in sorted(events, key=lambda e: RANKS.get(e["status"], 0)):
        await apply_status(sid, event["status"], event["error_code"], now, settings, terms)


# Events of a SID never recorded (a callback for another account's message, or one
# whose send was never recorded) wait this long for their SID, then go.
UNMATCHED_EVENTS = timedelta(days=1)


async def purge_events(now: datetime) -> int:
    """Delete callbacks that never matched a message (hourly, with the idempotency keys)."""
    rows = (
        await DeliveryEvent.delete()
        .where(DeliveryEvent.received_at < now - UNMATCHED_EVENTS)
        .returning(DeliveryEvent.id)
    )
    return len(rows)


async def sids_with_pending_events(sids: list[str]) -> set[str]:
    """Which of these SIDs have callbacks waiting to be applied (one query for many)."""
    if not sids:
        return set()
    rows = await DeliveryEvent.select(DeliveryEvent.provider_sid).where(
        DeliveryEvent.provider_sid.is_in(sids) & DeliveryEvent.applied.eq(False)
    )
    return {row["provider_sid"] for row in rows}


async def apply_status(
    sid: str,
    status: str,
    error_code: str | None,
    now: datetime,
    settings: Settings,
    terms: SmsTerms,
) -> bool:
    """Apply one delivery status; ``terms``: the quiet hours a fallback retry waits out."""
    rank = RANKS.get(status)
    if rank is None:
        return True  # a status we do not track; acknowledged, nothing to change
    async with write_transaction():
        row = await OutboxMessage.select().where(OutboxMessage.provider_sid == sid).first()
        if row is None:
            return False
        # Applied: the outbox row is the record now. Deleting the SID's events (not
        # marking them) leaves nothing behind for a callback Twilio replays, or that
        # someone replays with a captured signature (issue 13.13).
        await DeliveryEvent.delete().where(DeliveryEvent.provider_sid == sid)
        current = row["status"]
        if current in FINAL or rank <= RANKS.get(current, 0) or current not in RANKS:
            return True
        new_status = _ours(status)
        values: dict[Column | str, Any] = {
            OutboxMessage.status: new_status,
            OutboxMessage.status_at: now,
            OutboxMessage.error_code: error_code or row["error_code"],
        }
        await OutboxMessage.update(values).where(
            (OutboxMessage.id == row["id"]) & (OutboxMessage.status == current)
        )
        if new_status in ("undelivered", "failed"):
            await _fallback(row, error_code, now, settings, terms)
    return True


async def _fallback(
    row: dict[str, Any], error_code: str | None, now: datetime, settings: Settings, terms: SmsTerms
) -> None:
    """Carrier failure: one retry later, or a clerk phones the couple."""
    key = str(row["key"])
    # Never a text whose code is masked already (notify/scrub.py): the retry would
    # text the mask; the couple asks for a new code, or a clerk phones.
    retryable = (
        error_code in FALLBACK_CODES and not key.endswith(":fallback") and not is_scrubbed(row)
    )
    if settings.sms_fallback == "retry" and retryable:
        await OutboxMessage.insert(
            OutboxMessage(
                key=key + ":fallback",
                to_phone=row["to_phone"],
                template=row["template"],
                locale=row["locale"],
                payload=row["payload"],
                body=row["body"],
                status="pending",
                due_at=await _retry_at(row, now, settings, terms),
                created_at=now,
                urgent=row["urgent"],
                validity_seconds=row["validity_seconds"],
                appointment_id=row["appointment_id"],
            )
        ).on_conflict(action="DO NOTHING")
    else:
        await OutboxMessage.update({OutboxMessage.needs_call: True}).where(
            OutboxMessage.id == row["id"]
        )


async def _retry_at(
    row: dict[str, Any], now: datetime, settings: Settings, terms: SmsTerms
) -> datetime:
    """The fallback's send time; a non-urgent one waits out the office's quiet hours too."""
    due = now + timedelta(minutes=settings.sms_fallback_retry_minutes)
    if row["urgent"]:
        return due
    office = None
    if row["appointment_id"] is not None:
        office = (
            await Appointment.select(Appointment.office.timezone)
            .where(Appointment.id == row["appointment_id"])
            .first()
        )
    tz = office["office.timezone"] if office else terms.default_timezone
    return after_quiet_hours(due, ZoneInfo(tz), terms.quiet_hours)
