"""Retention: erase couples' personal data some time after their appointment.

The ``erase_personal_data`` job (``scheduler/jobs/schedule.py``) erases, for every
appointment whose office-local day is more than ``RETENTION_DAYS`` (default 180)
in the past (``domain.retention.first_kept_day``):

- the parties' names, phones and ID numbers: the sealed copy, the masked form and
  the keyed hash (no-show bans keep their own record; see docs/decisions.md);
- the appointment's ID claims (keyed hashes) if any are somehow still held;
- its outbox messages' recipient, text, payload and provider error text (Twilio's
  texts quote the number); outbox messages tied to no appointment are erased
  once *created* longer ago than the retention;
- its pre-check answers, except nationality and the document ticks;
- whatever registered erasers hold for it (see below).

It keeps everything statistical: office, service, slot, status, timestamps,
events, queue tickets, counters, ID *types*, message templates, statuses and
error codes, so reports keep working. ``appointment.erased_at`` marks the work
done: each batch claims its appointments with a conditional UPDATE on it, so
several processes may run the job at once, a second run changes nothing, and a
crash loses nothing (the next run redoes the batch). One short transaction per
``BATCH`` appointments.

Audit rows name appointments by reference and staff by username; they hold no
personal data of couples, so they are kept whole.

Hooks for other modules
-----------------------
A module holding personal data of its own registers, at import, one of:

- ``@erase_with_appointments("name")`` on ``async def fn(ids: list[int], now)``:
  called inside each batch's transaction with the appointment ids being erased
  (pre-check answers, anything keyed by appointment). Make it one set-based
  statement per table.
- ``@erase_on_schedule("name")`` on ``async def fn(now, settings) -> int``: called
  after the appointments, for rows not tied to an appointment (lottery
  applications, waiting-list entries). It must erase only rows past
  ``first_kept_day`` for their day and office, in short batches, idempotently, and
  return how many rows it erased.

and adds its module to ``HOOK_MODULES`` (one line), so that every process running
the job imports it whatever else it has imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.columns.combination import Combinable

from scheduler.db.engine import write_transaction
from scheduler.db.precheck_tables import Precheck, PrecheckParty
from scheduler.db.tables import Appointment, IdClaim, Office, OutboxMessage, Party
from scheduler.domain.retention import first_kept_day
from scheduler.settings import Settings

BATCH = 500
PRECHECK_ERASED = (
    PrecheckParty.occupation,
    PrecheckParty.education,
    PrecheckParty.marital_status,
    PrecheckParty.hukou_address,
)

AppointmentEraser = Callable[[list[int], datetime], Awaitable[None]]
ScheduledEraser = Callable[[datetime, Settings], Awaitable[int]]

APPOINTMENT_ERASERS: dict[str, AppointmentEraser] = {}
SCHEDULED_ERASERS: dict[str, ScheduledEraser] = {}
# Modules that register erasers at import (one line each).
HOOK_MODULES: tuple[str, ...] = (
    "scheduler.usecases.waitlist.retention",
    "scheduler.usecases.lottery.retention",
)


def erase_with_appointments(name: str) -> Callable[[AppointmentEraser], AppointmentEraser]:
    def register(fn: AppointmentEraser) -> AppointmentEraser:
        APPOINTMENT_ERASERS[name] = fn
        return fn

    return register


def erase_on_schedule(name: str) -> Callable[[ScheduledEraser], ScheduledEraser]:
    def register(fn: ScheduledEraser) -> ScheduledEraser:
        SCHEDULED_ERASERS[name] = fn
        return fn

    return register


async def erase_expired(now: datetime, settings: Settings, *, batch: int = BATCH) -> int:
    """Erase everything past retention; returns the number of rows erased."""
    for module in HOOK_MODULES:
        importlib.import_module(module)
    erased = 0
    for office in await Office.select(Office.id, Office.timezone).order_by(Office.id):
        cutoff = first_kept_day(now, ZoneInfo(office["timezone"]), settings.retention_days)
        while True:
            candidates = [
                r["id"]
                for r in await Appointment.select(Appointment.id)
                .where(
                    (Appointment.office == office["id"])
                    & Appointment.erased_at.is_null()
                    & (Appointment.slot.day < cutoff)
                )
                .order_by(Appointment.id)
                .limit(batch)
            ]
            if not candidates:
                break
            erased += await _erase_appointments(candidates, now)
    erased += await erase_unlinked_messages(now, settings, batch=batch)
    for fn in SCHEDULED_ERASERS.values():
        erased += await fn(now, settings)
    return erased


async def erase_parties(where: Combinable, *, code_hashes: bool = False) -> None:
    """Empty what names or identifies the partners ``where`` selects (``party`` rows of
    appointments, lottery applications or waiting-list entries); ``code_hashes``: their
    code hashes too (the lottery's and the waiting list's erasure always did)."""
    erased: dict[Any, str] = {
        Party.name: "",
        Party.phone: "",
        Party.id_sealed: "",
        Party.id_masked: "",
        Party.id_hash: "",
        Party.number_hash: "",
    }
    if code_hashes:
        erased[Party.code_hash] = ""
    await Party.update(erased).where(where)


async def _erase_appointments(candidates: list[int], now: datetime) -> int:
    async with write_transaction():
        claimed = await (
            Appointment.update({Appointment.erased_at: now})
            .where(Appointment.id.is_in(candidates) & Appointment.erased_at.is_null())
            .returning(Appointment.id)
        )
        ids = [r["id"] for r in claimed]
        if not ids:  # another process took this batch
            return 0
        await erase_parties(Party.appointment.is_in(ids))
        await IdClaim.delete().where(IdClaim.appointment.is_in(ids))
        await _blank_messages(OutboxMessage.appointment_id.is_in(ids))
        for fn in APPOINTMENT_ERASERS.values():
            await fn(ids, now)
    return len(ids)


@erase_with_appointments("precheck")
async def _erase_precheck(ids: list[int], now: datetime) -> None:
    """Pre-check answers: the free texts (occupation, hukou address, the clerk's note),
    education and marital status go; nationality and the document ticks stay (anonymous
    statistics, e.g. marriages with a foreign partner)."""
    prechecks = [
        r["id"]
        for r in await Precheck.update({Precheck.note: ""})
        .where(Precheck.appointment.is_in(ids))
        .returning(Precheck.id)
    ]
    if prechecks:
        await PrecheckParty.update(dict.fromkeys(PRECHECK_ERASED, "")).where(
            PrecheckParty.precheck.is_in(prechecks)
        )


async def _blank_messages(where: Combinable) -> int:
    changed = await (
        OutboxMessage.update(
            {
                OutboxMessage.to_phone: "",
                OutboxMessage.body: "",
                OutboxMessage.payload: "{}",
                OutboxMessage.error_text: None,
            }
        )
        .where(where)
        .returning(OutboxMessage.id)
    )
    return len(changed)


async def erase_unlinked_messages(now: datetime, settings: Settings, *, batch: int = BATCH) -> int:
    """Outbox messages tied to no appointment, created longer ago than the retention."""
    before = now - timedelta(days=settings.retention_days)
    erased = 0
    while True:
        rows = (
            await OutboxMessage.select(OutboxMessage.id)
            .where(
                OutboxMessage.appointment_id.is_null()
                & (OutboxMessage.created_at < before)
                & (OutboxMessage.to_phone != "")
            )
            .order_by(OutboxMessage.id)
            .limit(batch)
        )
        if not rows:
            return erased
        async with write_transaction():
            # Conditional, so that two processes racing for a batch count it once.
            erased += await _blank_messages(
                OutboxMessage.id.is_in([r["id"] for r in rows]) & (OutboxMessage.to_phone != "")
            )
