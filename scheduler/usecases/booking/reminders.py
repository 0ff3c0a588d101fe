"""Reminders: the day before (with the documents to bring) and a few hours before.

The job may run any number of times: each reminder's outbox key is unique per
appointment and kind, so a couple is reminded once per kind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.db.appointments import load
from scheduler.db.engine import write_transaction
from scheduler.db.tables import Appointment, Office
from scheduler.settings import Settings
from scheduler.usecases.couples.texting import notify_couple


async def _remind(references: list[str], template: str, now: datetime, settings: Settings) -> int:
    for reference in references:
        async with write_transaction():
            loaded = await load(reference)
            if loaded is not None and loaded.appointment.status == "confirmed":
                await notify_couple(loaded, template, now, settings)
    return len(references)


async def queue_reminders(now: datetime, settings: Settings) -> int:
    """Queue due reminders for every office; returns how many appointments were considered."""
    queued = 0
    for office in await Office.select(Office.id, Office.timezone).where(Office.active.eq(True)):
        local = now.astimezone(ZoneInfo(office["timezone"]))
        if local.time() >= settings.reminder_day_before_at:
            tomorrow = local.date() + timedelta(days=1)
            rows = await Appointment.select(Appointment.reference).where(
                (Appointment.office == office["id"])
                & (Appointment.status == "confirmed")
                & (Appointment.slot.day == tomorrow)
            )
            queued += await _remind(
                [r["reference"] for r in rows], "reminder_day_before", now, settings
            )
        soon = now + timedelta(hours=settings.reminder_same_day_hours)
        rows = await Appointment.select(Appointment.reference).where(
            (Appointment.office == office["id"])
            & (Appointment.status == "confirmed")
            & (Appointment.slot.start_at > now)
            & (Appointment.slot.start_at <= soon)
            & (Appointment.slot.day == local.date())
        )
        queued += await _remind([r["reference"] for r in rows], "reminder_same_day", now, settings)
    return queued
