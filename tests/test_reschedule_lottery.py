"""Moving couples never places them on a lottery date (its seats go by draw): the
pure placement with excluded days, and a blackout's run on a real database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import httpx

from scheduler.db.tables import Appointment, Slot
from scheduler.domain.blackouts import Candidate, Planner, Want
from scheduler.settings import get_settings
from scheduler.usecases.offices import reschedule
from tests.helpers import booking_body, make_office, staff_token

D0 = date(2027, 3, 1)


def _slot(slot_id: int, day: date) -> tuple[str, Candidate]:
    return "marriage", Candidate(slot_id, 1, day, time(9), slot_id, 1, free=1)


def test_placement_skips_excluded_days_only_for_their_office_and_service() -> None:
    want = Want(7, 1, "marriage", D0, time(9), 2)

    def placed(excluded: set[tuple[int, str, date]]) -> date | None:
        slots = [_slot(1, D0 + timedelta(days=1)), _slot(2, D0 + timedelta(days=3))]
        planner = Planner.build(slots, {1: 5, 2: 5}, {1: 10}, excluded_days=excluded)
        chosen = planner.place(want, other_offices=False)
        return chosen.day if chosen else None

    assert placed(set()) == D0 + timedelta(days=1)
    assert placed({(1, "marriage", D0 + timedelta(days=1))}) == D0 + timedelta(days=3)
    # Another office's or another service's lottery on that date changes nothing.
    assert placed({(2, "marriage", D0 + timedelta(days=1))}) == D0 + timedelta(days=1)
    assert placed({(1, "divorce", D0 + timedelta(days=1))}) == D0 + timedelta(days=1)


async def _slot_days(office_id: int) -> list[date]:
    rows = await Slot.select(Slot.day).where(Slot.office == office_id).order_by(Slot.day)
    return sorted({r["day"] for r in rows})


async def test_a_blackout_run_skips_a_lottery_date_for_the_next_day(
    client: httpx.AsyncClient, db: None
) -> None:
    """Everything from tomorrow to the couple's day is closed; the nearest day after
    it is a lottery date, so the couple lands on the first open day after that."""
    office_id = await make_office(days_ahead=12)
    admin = await staff_token(client, "lot.admin", role="admin", offices=("GZ-TH",))
    days = await _slot_days(office_id)
    lottery_day = next(d for d in days if d >= date.today() + timedelta(days=4))
    booked_day = max(d for d in days if d < lottery_day)
    after = min(d for d in days if d > lottery_day)
    resp = await client.post(
        "/api/v1/admin/lotteries",
        json={
            "date": lottery_day.isoformat(),
            "offices": ["GZ-TH"],
            "opens_days_before": 3,
            "opens_at": "09:00",
            "closes_days_before": 1,
            "closes_at": "09:00",
            "confirm_hours": 12,
        },
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    slot = (
        await Slot.select(Slot.id)
        .where((Slot.office == office_id) & (Slot.day == booked_day))
        .first()
    )
    held = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    assert held.status_code == 201, held.text
    closed = await client.post(
        "/api/v1/admin/blackouts",
        json={
            "offices": ["GZ-TH"],
            "start_date": (date.today() + timedelta(days=1)).isoformat(),
            "end_date": booked_day.isoformat(),
            "kind": "closed",
            "reason": {"zh-Hans": "停电", "en": "Power cut"},
        },
        headers=admin,
    )
    assert closed.status_code == 202, closed.text
    now = datetime.now(UTC)
    for run_id in await reschedule.due_runs(now):
        assert await reschedule.execute(run_id, "test", now, settings=get_settings())
    moved = await Appointment.select(Appointment.status, Appointment.slot.day).first()
    assert moved is not None
    assert (moved["status"], moved["slot.day"]) == ("pending_confirmation", after)
    assert not await Appointment.exists().where(Appointment.slot.day == lottery_day)
