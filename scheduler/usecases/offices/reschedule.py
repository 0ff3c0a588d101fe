"""Reschedule runs: move every appointment a closed blackout covers, durably.

A run is a row; any process may execute it (a lease makes it one at a time) and
a killed run is resumed by the next. Work goes in batches, each one
transaction: plan seats in memory (domain.blackouts.Planner), then apply them
with set-based conditional UPDATEs. A booking racing the batch can only make a
conditional UPDATE come back short; the batch then rolls back and is planned
again from fresh counters. An appointment is done when it has an item row for
the run (unique per run and appointment), so a restarted run neither moves a
couple twice nor texts them twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import seats
from scheduler.db.appointments import ACTIVE_STATUSES
from scheduler.db.blackout_tables import Blackout, BlackoutOffice, RescheduleRun
from scheduler.db.engine import write_transaction
from scheduler.db.tables import (
    Appointment,
    Office,
    OfficeDay,
    OnsiteWindow,
    Slot,
)
from scheduler.domain.blackouts import Candidate, Planner, Rule, Want
from scheduler.domain.calendar import onsite_window_start
from scheduler.notify.terms import SmsTerms
from scheduler.settings import Settings
from scheduler.usecases.calendar.closures import rule_of
from scheduler.usecases.calendar.lottery_days import reserved_days
from scheduler.usecases.offices.reschedule_apply import (
    LEASE,
    Conflict,
    Context,
    Move,
    RowIds,
    apply_batch,
    int_list,
    row_ids,
)
from scheduler.usecases.policy import policies
from scheduler.usecases.policy import rules as registry_rules

BATCH = 500
SERVICES_ALL = frozenset({"marriage", "divorce", "reissue", "ceremony", "counselling"})
MAX_CONFLICTS = 20


async def covered_slots(rule: Rule, office_ids: list[int]) -> list[dict[str, Any]]:
    """Slots of these offices that the rule covers (local dates and times)."""
    offices = {
        o["id"]: ZoneInfo(o["timezone"])
        for o in await Office.select(Office.id, Office.timezone).where(
            Office.id.is_in(office_ids or [-1])
        )
    }
    rows = await Slot.select().where(
        Slot.office.is_in(office_ids or [-1])
        & (Slot.day >= rule.start_date)
        & (Slot.day <= rule.end_date)
    )
    return [
        r
        for r in rows
        if rule.covers(
            r["service"],
            r["day"],
            r["start_at"].astimezone(offices[r["office"]]).time(),
            r["end_at"].astimezone(offices[r["office"]]).time(),
        )
    ]


async def region_neighbours() -> dict[int, list[int]]:
    """For each active office, the other active offices of its region."""
    offices = await Office.select(Office.id, Office.region).where(Office.active.eq(True))
    by_region: dict[str, list[int]] = defaultdict(list)
    for o in offices:
        if o["region"]:
            by_region[o["region"]].append(o["id"])
    return {o["id"]: [x for x in by_region.get(o["region"], []) if x != o["id"]] for o in offices}


async def _context(run: dict[str, Any]) -> Context:
    blackout = (
        await Blackout.select().where(Blackout.id == run["blackout"]).output(load_json=True).first()
    )
    assert blackout is not None, "a run's blackout is never deleted"
    office_ids = [
        r["office"]
        for r in await BlackoutOffice.select(BlackoutOffice.office).where(
            BlackoutOffice.blackout == run["blackout"]
        )
    ]
    offices = await Office.select(Office.id, Office.timezone).where(Office.active.eq(True))
    regions = await region_neighbours()
    covered = [s["id"] for s in await covered_slots(rule_of(blackout), office_ids)]
    return Context(
        run["id"],
        blackout,
        office_ids,
        covered,
        {o["id"]: ZoneInfo(o["timezone"]) for o in offices},
        regions,
    )


_STATUSES = ", ".join(f"'{s}'" for s in ACTIVE_STATUSES)


async def _pending(
    ctx: Context, limit: int, among: list[int] | None = None
) -> list[dict[str, Any]]:
    """Active appointments still on covered slots and not yet handled by this run,
    in booking order (optionally only ``among`` these ids)."""
    # A hold waiting for its seat (awaiting_seat) holds none to move: confirming it
    # later on a closed slot is refused (date-closed) like any booking there.
    among_sql = f" AND a.id IN ({int_list(among)})" if among is not None else ""
    return await Appointment.raw(
        "SELECT a.id, a.office, a.service, a.people, a.locale, a.reference, a.slot,"  # noqa: S608
        ' s.day AS "slot.day", s.start_at AS "slot.start_at"'
        " FROM appointment a JOIN slot s ON s.id = a.slot"
        f" WHERE a.slot IN ({int_list(ctx.covered)}) AND a.status IN ({_STATUSES})"
        " AND NOT a.awaiting_seat"
        " AND a.id NOT IN (SELECT i.appointment FROM reschedule_item i"
        f" WHERE i.run = {int(ctx.run_id)}){among_sql}"
        f" ORDER BY a.created_at, a.id LIMIT {int(limit)}"
    )


async def _queue(ctx: Context) -> list[int]:
    """Every appointment the run still has to handle, in booking order: read once,
    then each batch re-checks its share (a couple may cancel or move meanwhile)."""
    rows = await _pending(ctx, 1_000_000)
    return [r["id"] for r in rows]


async def planner_for(
    ctx: Context, services: Collection[str], offices: set[int], first_day: date
) -> Planner:
    """Free seats from ``first_day`` on, read from the counters now. The slots the
    run empties (``ctx.covered``) are never a destination: a run finds them blocked,
    and a preview, planned before the declaration blocks them, must not list them."""
    for office in list(offices):
        offices.update(ctx.regions.get(office, []) if ctx.blackout["allow_other_office"] else [])
    office_list = sorted(offices)
    day_rows = await OfficeDay.select().where(
        OfficeDay.office.is_in(office_list) & (OfficeDay.day >= first_day)
    )
    window_rows = await OnsiteWindow.select().where(OnsiteWindow.office.is_in(office_list))
    slots = await Slot.select().where(
        Slot.office.is_in(office_list)
        & Slot.service.is_in(sorted(services))
        & (Slot.day >= first_day)
        & Slot.blocked.eq(False)
        & Slot.id.not_in(ctx.covered or [-1])
    )
    day_id = {(r["office"], r["day"]): r["id"] for r in day_rows}
    window_id = {(r["office"], r["window_start"]): r["id"] for r in window_rows}
    candidates = []
    for s in slots:
        tz = ctx.timezones[s["office"]]
        free = (s["reduced_capacity"] if s["reduced_capacity"] is not None else s["capacity"]) - s[
            "booked"
        ]
        window = window_id.get((s["office"], onsite_window_start(s["start_at"], tz)))
        day_row = day_id.get((s["office"], s["day"]))
        if free > 0 and window is not None and day_row is not None:
            start = s["start_at"].astimezone(tz).time()
            candidates.append(
                (
                    s["service"],
                    Candidate(s["id"], s["office"], s["day"], start, day_row, window, free),
                )
            )
    # The day's count is the sum over its slots (office_day.booked is not kept where
    # the slot caps keep the day's, issue 16).
    booked = await seats.day_booked(office_list, first_day)
    return Planner.build(
        candidates,
        {r["id"]: r["capacity"] - booked.get((r["office"], r["day"]), 0) for r in day_rows},
        {r["id"]: r["capacity"] - r["people"] for r in window_rows},
        ctx.regions,
        await reserved_days(office_list, services, first_day),
    )


def _move(
    ctx: Context,
    planner: Planner,
    a: dict[str, Any],
    rows: RowIds,
    limits: dict[int, frozenset[int]],
) -> Move:
    tz = ctx.timezones[a["office"]]
    want = Want(
        a["id"],
        a["office"],
        a["service"],
        a["slot.day"],
        a["slot.start_at"].astimezone(tz).time(),
        a["people"],
    )
    return Move(
        a,
        rows[0].get((a["office"], a["slot.day"])),
        rows[1].get((a["office"], onsite_window_start(a["slot.start_at"], tz))),
        planner.place(
            want,
            other_offices=bool(ctx.blackout["allow_other_office"]),
            only=limits.get(a["id"]),
        ),
    )


def earliest_move_day(now: datetime, timezones: Collection[ZoneInfo]) -> date:
    """The first day a couple may be moved to: tomorrow in the earliest office zone."""
    return min(now.astimezone(tz).date() for tz in timezones) + timedelta(days=1)


async def plan_run(ctx: Context, services: Collection[str], first: date) -> list[Move]:
    """Every move the run would make now, in the run's order with the run's planner,
    applying nothing: the blackout preview (what the admin confirms is what runs)."""
    pending = await _pending(ctx, 1_000_000)
    planner = await planner_for(ctx, services, set(ctx.office_ids), first)
    limits = await registry_rules.office_limits(pending)
    return [_move(ctx, planner, a, ({}, {}), limits) for a in pending]


async def _claim(run_id: int, owner: str, now: datetime) -> dict[str, Any] | None:
    async with write_transaction():
        rows = await RescheduleRun.raw(
            "UPDATE reschedule_run SET status = 'running', lease_owner = {}, lease_expires_at = {},"
            " started_at = COALESCE(started_at, {}) WHERE id = {}"
            " AND (status = 'pending' OR (status = 'running' AND lease_expires_at < {}))"
            " RETURNING id, blackout",
            owner,
            now + LEASE,
            now,
            run_id,
            now,
        )
    return rows[0] if rows else None


AfterBatch = Callable[[int], Awaitable[None]]


async def execute(
    run_id: int,
    owner: str,
    now: datetime,
    *,
    settings: Settings,
    batch: int = BATCH,
    after_batch: AfterBatch | None = None,
) -> bool:
    """Run (or resume) one reschedule run to its end; False if another owner holds it."""
    run = await _claim(run_id, owner, now)
    if run is None:
        return False
    terms = await policies.sms_terms(settings)
    ctx = await _context(run)
    first = earliest_move_day(now, ctx.timezones.values())
    services = set(ctx.blackout["services"] or []) or SERVICES_ALL
    conflicts, done, planner = 0, 0, None
    rows = await row_ids(ctx)
    queue = await _queue(ctx)
    while True:
        try:
            async with write_transaction():
                # The queue's next share, re-checked; once it is empty, one last full
                # look catches anything the first read missed.
                pending = await _pending(ctx, batch, queue[:batch]) if queue else []
                pending = pending or await _pending(ctx, batch)
                if not pending:
                    break
                # One plan for the whole run: the in-memory counters follow every
                # batch's writes; only a conflict (a racing booking) re-reads them.
                planner = planner or await planner_for(ctx, services, set(ctx.office_ids), first)
                limits = await registry_rules.office_limits(pending)
                moves = [_move(ctx, planner, a, rows, limits) for a in pending]
                await apply_batch(ctx, moves, now, terms)
        except Conflict:
            conflicts += 1
            planner = None
            if conflicts > MAX_CONFLICTS:
                raise
            continue
        done += len(pending)
        handled = {a["id"] for a in pending}
        queue = [i for i in queue[batch:] if i not in handled] if queue else []
        if after_batch is not None:
            await after_batch(done)
    await RescheduleRun.update(
        {
            RescheduleRun.status: "done",
            RescheduleRun.finished_at: now,
            RescheduleRun.lease_owner: None,
        }
    ).where(RescheduleRun.id == run_id)
    return True


async def due_runs(now: datetime) -> list[int]:
    rows = await RescheduleRun.select(RescheduleRun.id).where(
        (RescheduleRun.status == "pending")
        | ((RescheduleRun.status == "running") & (RescheduleRun.lease_expires_at < now))
    )
    return [r["id"] for r in rows]


async def plan_moves(
    ctx: Context, appointment_ids: list[int], services: Collection[str], first_day: date
) -> list[Move]:
    """Seats for these appointments (those still active on ``ctx.covered``), planned
    now inside the caller's transaction: the excess of a lowered cap
    (scheduler/usecases/offices/offices.py). A move whose ``to`` is None found no seat."""
    pending = await _pending(ctx, max(len(appointment_ids), 1), appointment_ids)
    planner = await planner_for(ctx, services, set(ctx.office_ids), first_day)
    rows = await row_ids(ctx)
    limits = await registry_rules.office_limits(pending)
    return [_move(ctx, planner, a, rows, limits) for a in pending]


async def apply_moves(ctx: Context, moves: list[Move], now: datetime, terms: SmsTerms) -> None:
    """Apply planned moves in the caller's transaction, as a run's batch does
    (counters, items, history, SMS); raises Conflict if a seat went meanwhile."""
    await apply_batch(ctx, moves, now, terms)
