"""Moving the excess of a lowered slot cap (issue 6), when the admin chooses that
instead of a refusal: in each slot over the new cap, the couples who booked
last (as many as the slot is over) are moved to the nearest free seats of the
same office and service, from tomorrow on, by the reschedule machinery
(scheduler/usecases/offices/reschedule.py: same placement, counters, history and SMS as a
blackout's run). It runs inside the cap change's transaction, and only when
every one of them finds a seat; otherwise nothing changes and the admin is told.
The run row records what was done (no blackout: ``blackout`` is NULL).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.appointments import ACTIVE_STATUSES
from scheduler.db.blackout_tables import RescheduleItem, RescheduleRun
from scheduler.db.tables import Appointment, Slot
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES, translate
from scheduler.notify.terms import SmsTerms
from scheduler.usecases.offices.reschedule import apply_moves, plan_moves
from scheduler.usecases.offices.reschedule_apply import Conflict, Context


async def _latest(slot_id: int, count: int) -> list[int]:
    """The ``count`` active appointments of the slot booked last."""
    rows = (
        await Appointment.select(Appointment.id)
        .where(
            (Appointment.slot == slot_id)
            & Appointment.status.is_in(list(ACTIVE_STATUSES))
            & Appointment.awaiting_seat.eq(False)  # no seat: not part of the excess
        )
        .order_by(Appointment.created_at, ascending=False)
        .order_by(Appointment.id, ascending=False)
        .limit(count)
    )
    return [r["id"] for r in rows]


async def move_excess(
    office: dict[str, Any],
    service: str,
    over: list[dict[str, Any]],
    cap: int,
    now: datetime,
    terms: SmsTerms,
) -> dict[str, Any]:
    """Move exactly the excess of the ``over`` slots (rows with ``booked`` > ``cap``).
    Call inside the write transaction that set the new cap."""
    wanted: list[int] = []
    for slot in over:
        wanted += await _latest(slot["id"], slot["booked"] - cap)
    tz = ZoneInfo(office["timezone"])
    run = await RescheduleRun.insert(
        RescheduleRun(
            blackout=None,
            status="done",
            total=len(wanted),
            created_at=now,
            started_at=now,
            finished_at=now,
        )
    ).returning(RescheduleRun.id)
    ctx = Context(
        run[0]["id"],
        {
            "allow_other_office": False,
            "services": [service],
            "reason": {loc: translate(loc, "offices.excess.reason") for loc in LOCALES},
        },
        [office["id"]],
        [s["id"] for s in over],
        {office["id"]: tz},
        {},
    )
    moves = await plan_moves(ctx, wanted, {service}, now.astimezone(tz).date() + timedelta(days=1))
    unplaced = [m for m in moves if m.to is None]
    if unplaced or len(moves) != len(wanted):
        raise DomainError(
            "cap-below-bookings",
            field="slot_cap",
            reason="no-room",
            count=len(unplaced) or len(wanted) - len(moves),
            rows=str(len(wanted)),
        )
    try:
        await apply_moves(ctx, moves, now, terms)
    except Conflict as exc:  # a booking took a planned seat meanwhile: try again
        raise DomainError("slot-full") from exc
    return {"run": ctx.run_id, "moved": [m.appointment["id"] for m in moves]}


async def run_offices(run_id: int) -> set[int]:
    """The office an excess run belongs to (it has no blackout to scope it by): that
    of the slots its couples were moved from, all of one office and service."""
    moved_from = RescheduleItem.select(RescheduleItem.from_slot).where(RescheduleItem.run == run_id)
    rows = await Slot.select(Slot.office).where(Slot.id.is_in(moved_from)).distinct()
    return {r["office"] for r in rows}
