"""Who is at the desk: the couple card a clerk reads before confirming "both present"
(issue 14, item 12) and again next to the ticket.

Both names as booked (they must match the ID cards in front of the clerk), the ID
documents masked, the slot in the office's time, the pre-check state and every
flag that would refuse or qualify the check-in, worded before the clerk acts
rather than as an error after. Read only: nothing here changes or audits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scheduler.db.queue_tables import QueueTicket
from scheduler.domain.precheck import offered as precheck_offered
from scheduler.domain.queue import arrival
from scheduler.settings import Settings
from scheduler.usecases.desk.precheck import rules_of as precheck_rules
from scheduler.usecases.desk.precheck import statuses_of as precheck_statuses
from scheduler.usecases.desk.queue import CheckIn, already_checked_in, find

# Pre-check states a clerk should look at before admitting the couple.
PRECHECK_FLAGGED = ("needs_correction", "not_submitted")


async def card(cmd: CheckIn, *, now: datetime, settings: Settings) -> dict[str, Any]:
    loaded = await find(cmd, settings)
    appointment, slot, tz = loaded.appointment, loaded.slot, loaded.tz
    start = slot.start_at.astimezone(tz)
    end = slot.end_at.astimezone(tz)
    today = now.astimezone(tz).date()
    flags: list[dict[str, Any]] = []
    status = appointment.status
    already = await already_checked_in(loaded)
    if already is not None:
        flags.append({"key": already.key, "params": already.params})
    elif status != "confirmed":
        flags.append({"key": f"safety.flag.status.{status}", "params": {}})
    if slot.day != today:
        flags.append({"key": "safety.flag.not_today", "params": {"date": start.date().isoformat()}})
    verdict = arrival(
        now, slot.start_at, settings.checkin_early_minutes, settings.checkin_late_minutes
    )
    if slot.day == today and status == "confirmed":
        if verdict == "early":
            flags.append(
                {"key": "safety.flag.early", "params": {"minutes": settings.checkin_early_minutes}}
            )
        elif verdict == "late":
            flags.append({"key": "safety.flag.late", "params": {"time": f"{start:%H:%M}"}})
    precheck = None
    if precheck_offered(await precheck_rules(loaded), appointment.service):
        precheck = (await precheck_statuses([loaded.id])).get(loaded.id, "not_submitted")
        if precheck in PRECHECK_FLAGGED:
            flags.append({"key": f"safety.flag.precheck.{precheck}", "params": {}})
    ticket = (
        await QueueTicket.select(QueueTicket.label)
        .where(QueueTicket.appointment == loaded.id)
        .first()
    )
    return {
        "reference": appointment.reference,
        "service": appointment.service,
        "status": status,
        "date": start.date().isoformat(),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "parties": [
            {
                "role": p["role"],
                "name": p["name"],
                "id_type": p["id_type"],
                "id_masked": p["id_masked"],
            }
            for p in sorted(loaded.parties, key=lambda p: p["role"])
        ],
        "precheck": precheck,
        "ticket": ticket["label"] if ticket else None,
        "flags": flags,
        # What the desk may do: check in (late ones with "accept late" ticked).
        "can_check_in": status == "confirmed" and slot.day == today and verdict != "early",
        "late": verdict == "late",
    }
