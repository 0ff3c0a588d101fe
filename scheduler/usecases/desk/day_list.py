"""The clerk's day: appointments of one office and day, masked; audited reveals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from scheduler.db import audit
from scheduler.db.appointments import load, masked_party
from scheduler.db.engine import write_transaction
from scheduler.db.precheck_tables import Precheck
from scheduler.db.queue_tables import QueueTicket
from scheduler.db.records import OfficeRecord
from scheduler.db.tables import Appointment, OutboxMessage, Party
from scheduler.domain.identity import ID_TYPES
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import keyed_hash, normalize_reference
from scheduler.settings import Settings
from scheduler.usecases.desk.precheck import statuses_of as precheck_statuses
from scheduler.usecases.privacy.personal_data import open_id

LISTED = (
    "pending_confirmation",
    "confirmed",
    "checked_in",
    "called",
    "serving",
    "completed",
    "cancelled",
    "expired",
    "no_show",
    "moved",
    "needs_rebooking",
)


async def _matching_ids(query: str, settings: Settings) -> list[int]:
    """Appointments whose reference or either party's ID number is ``query``."""
    query = query.strip()
    ids = [
        r["id"]
        for r in await Appointment.select(Appointment.id).where(
            Appointment.reference == normalize_reference(query)
        )
    ]
    hashes = [keyed_hash(settings.secret_key, "id", f"{t}:{query.upper()}") for t in ID_TYPES]
    ids += [
        r["appointment"]
        for r in await Party.select(Party.appointment).where(
            Party.id_hash.is_in(hashes) & Party.appointment.is_not_null()
        )
    ]
    return ids


async def day_list(
    office: OfficeRecord, day: date, *, status: str | None, query: str | None, settings: Settings
) -> list[dict[str, Any]]:
    tz = office.tz
    where = (Appointment.office == office.id) & (Appointment.slot.day == day)
    if status:
        if status not in LISTED:
            raise DomainError("invalid-input", field="status", reason="status")
        where &= Appointment.status == status
    if query:
        where &= Appointment.id.is_in(await _matching_ids(query, settings) or [-1])
    rows = (
        await Appointment.select(
            Appointment.id,
            Appointment.reference,
            Appointment.status,
            Appointment.service,
            Appointment.slot.start_at,
            Appointment.slot.end_at,
        )
        .where(where)
        .order_by(Appointment.slot.start_at)
    )
    ids = [r["id"] for r in rows] or [-1]
    parties: dict[int, list[dict[str, Any]]] = {}
    for p in await Party.select().where(Party.appointment.is_in(ids)).order_by(Party.role):
        parties.setdefault(p["appointment"], []).append(p)
    tickets = {
        t["appointment"]: t
        for t in await QueueTicket.select(
            QueueTicket.appointment, QueueTicket.label, QueueTicket.status
        ).where(QueueTicket.appointment.is_in(ids))
    }
    prechecked = await precheck_statuses(ids)
    return [
        {
            "reference": r["reference"],
            "status": r["status"],
            "service": r["service"],
            "start": r["slot.start_at"].astimezone(tz).strftime("%H:%M"),
            "end": r["slot.end_at"].astimezone(tz).strftime("%H:%M"),
            "ticket": tickets.get(r["id"], {}).get("label"),
            "precheck": prechecked.get(r["id"]),
            "parties": [masked_party(p) for p in parties.get(r["id"], [])],
        }
        for r in rows
    ]


async def reveal(
    office_id: int,
    reference: str,
    *,
    actor: audit.Actor,
    ip: str | None,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    """Full ID numbers and phones of one appointment; every reveal is audited."""
    loaded = await load(reference)
    if loaded is None or loaded.office.id != office_id:
        raise DomainError("not-found")
    parties = [
        {
            "role": p["role"],
            "name": p["name"],
            "id_type": p["id_type"],
            "id_number": open_id(settings, p),  # decrypted here only, before the audit row
            "phone": p["phone"],
        }
        for p in loaded.parties
    ]
    async with write_transaction():
        await audit.record(
            actor,
            "appointment.reveal",
            office_id=office_id,
            object_type="appointment",
            object_id=loaded.appointment.reference,
            ip=ip,
            now=now,
        )
    return {"reference": loaded.appointment.reference, "parties": parties}


SMS_DONE = ("sent", "delivered")
SMS_FAILED = ("failed", "undelivered", "dead")


async def sms_state(
    office: OfficeRecord, reference: str, templates: tuple[str, ...], now: datetime
) -> dict[str, str] | None:
    """What became of the couple's latest SMS of these templates (one per partner):
    "sent" only when both went out; "queued" with the local time it is due (quiet
    hours hold non-urgent texts); "sending"; "failed". None when there is none."""
    tz = office.tz
    appointment = (
        await Appointment.select(Appointment.id)
        .where(
            (Appointment.reference == normalize_reference(reference))
            & (Appointment.office == office.id)
        )
        .first()
    )
    if appointment is None:
        return None
    rows = (
        await OutboxMessage.select(
            OutboxMessage.status, OutboxMessage.due_at, OutboxMessage.created_at
        )
        .where(
            (OutboxMessage.appointment_id == appointment["id"])
            & OutboxMessage.template.is_in(list(templates))
        )
        .order_by(OutboxMessage.created_at, ascending=False)
        .order_by(OutboxMessage.id, ascending=False)
        .limit(2)  # the latest event texts both partners
    )
    if not rows:
        return None
    if any(r["status"] in SMS_FAILED for r in rows):
        return {"state": "failed"}
    if all(r["status"] in SMS_DONE for r in rows):
        return {"state": "sent"}
    due = max(r["due_at"] for r in rows)
    if due > now:
        local = due.astimezone(tz)
        same_day = local.date() == now.astimezone(tz).date()
        when = f"{local:%H:%M}" if same_day else f"{local:%m-%d %H:%M}"
        return {"state": "queued", "time": when}
    return {"state": "sending"}


async def pending_prechecks_by_day(office: OfficeRecord, today: date) -> list[dict[str, Any]]:
    """Days from today on with pre-checks waiting for review, and how many: the list
    shows one day (today by default); this points to the others."""
    waiting = Precheck.select(Precheck.appointment).where(Precheck.status == "submitted")
    rows = await Appointment.select(Appointment.slot.day).where(
        Appointment.id.is_in(waiting)
        & (Appointment.office == office.id)
        & (Appointment.slot.day >= today)
    )
    counts: dict[date, int] = {}
    for r in rows:
        counts[r["slot.day"]] = counts.get(r["slot.day"], 0) + 1
    return [{"date": d.isoformat(), "count": n} for d, n in sorted(counts.items())]
