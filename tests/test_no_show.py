"""The no-show job and bans (issue 4.8): the job marks exactly the late, unchecked,
confirmed appointments; crossing the rule's threshold bans the person (409 banned
with the end date) while others book; admins see bans of their offices, masked,
and lifting one (audited) lets the couple book again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from scheduler.db import audit
from scheduler.db.audit import NamedActor
from scheduler.db.policy_tables import Ban
from scheduler.db.tables import (
    Appointment,
    AppointmentEvent,
    IdClaim,
    Office,
    OfficeDay,
    OnsiteWindow,
    Slot,
)
from scheduler.domain.calendar import onsite_window_start
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.desk import no_show
from scheduler.usecases.desk.queue import CheckIn, act, call_next, check_in
from scheduler.usecases.policy import policies
from tests.helpers import booking_body, make_office, open_slots, person, sms_codes, staff_token

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
async def fresh_policies() -> AsyncIterator[None]:
    policies.invalidate()
    yield
    policies.invalidate()  # no override leaks into the next test's empty database


async def _slot(code: str, start: datetime) -> int:
    office = await Office.select().where(Office.code == code).first()
    assert office is not None
    day = start.astimezone(SHANGHAI).date()
    same = await Slot.select(Slot.id).where(
        (Slot.office == office["id"]) & (Slot.start_at == start) & (Slot.service == "marriage")
    )
    if same:
        return int(same[0]["id"])
    rows = await Slot.insert(
        Slot(
            office=office["id"],
            service="marriage",
            day=day,
            start_at=start,
            end_at=start + timedelta(minutes=30),
            capacity=20,
        )
    ).returning(Slot.id)
    await OfficeDay.insert(OfficeDay(office=office["id"], day=day, capacity=1000)).on_conflict(
        action="DO NOTHING"
    )
    await OnsiteWindow.insert(
        OnsiteWindow(
            office=office["id"], window_start=onsite_window_start(start, SHANGHAI), capacity=1000
        )
    ).on_conflict(action="DO NOTHING")
    return int(rows[0]["id"])


async def confirmed(
    start: datetime, a: dict[str, str] | None = None, code: str = "GZ-TH"
) -> dict[str, Any]:
    """A couple confirmed (an hour before) for a slot of their own starting at ``start``."""
    slot_id = await _slot(code, start)
    a, b = a or person(), person()
    booked_at = start - timedelta(hours=3)
    held = await booking.hold(
        booking.BookingInput(
            slot_id=slot_id,
            service="marriage",
            party_a=booking.PartyInput(**a),
            party_b=booking.PartyInput(**b),
        ),
        now=booked_at,
        settings=get_settings(),
    )
    codes = await sms_codes(held["reference"])
    for role in ("a", "b"):
        await booking.confirm(
            held["reference"], role, codes[role], now=booked_at, settings=get_settings()
        )
    return {"reference": held["reference"], "token": held["manage_token"], "a": a, "b": b}


async def _status(reference: str) -> str:
    row = (
        await Appointment.select(Appointment.status)
        .where(Appointment.reference == reference)
        .first()
    )
    assert row is not None
    return str(row["status"])


async def test_job_marks_exactly_the_late_confirmed_appointments(db: None) -> None:
    await make_office(days_ahead=5)
    # A local noon (no midnight in between); every use case here takes ``now``.
    start = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)
    late = [await confirmed(start) for _ in range(3)]
    arrived, cancelled = await confirmed(start), await confirmed(start)
    future = await confirmed(start + timedelta(hours=2))
    settings = get_settings()
    await check_in(
        CheckIn(
            office_id=(await Office.select(Office.id).first())["id"],  # type: ignore[index]
            reference=arrived["reference"],
            parties_present=frozenset({"a", "b"}),
        ),
        now=start + timedelta(minutes=1),
        settings=settings,
        actor=NamedActor("th.clerk"),
    )
    await booking.cancel(
        cancelled["reference"],
        cancelled["token"],
        now=start - timedelta(hours=2, minutes=30),
        settings=settings,
    )
    # Still inside the late window: nothing happens.
    within = start + timedelta(minutes=settings.checkin_late_minutes - 1)
    assert await no_show.mark_no_shows(within, settings) == []

    after = start + timedelta(minutes=settings.checkin_late_minutes + 1)
    # Several processes at once: each late appointment is marked once, by one of them.
    runs = await asyncio.gather(*[no_show.mark_no_shows(after, settings) for _ in range(4)])
    marked = sorted(i for run in runs for i in run)
    late_ids = sorted(
        r["id"]
        for r in await Appointment.select(Appointment.id).where(
            Appointment.reference.is_in([c["reference"] for c in late])
        )
    )
    assert marked == late_ids
    for couple in late:
        assert await _status(couple["reference"]) == "no_show"
    assert await _status(arrived["reference"]) == "checked_in"
    assert await _status(cancelled["reference"]) == "cancelled"
    assert await _status(future["reference"]) == "confirmed"
    events = await AppointmentEvent.select(AppointmentEvent.appointment).where(
        AppointmentEvent.kind == "no_show"
    )
    assert sorted(e["appointment"] for e in events) == late_ids
    # Their ID claims are released; the future couple still holds theirs.
    claims = await IdClaim.select(IdClaim.appointment)
    assert not {c["appointment"] for c in claims} & set(late_ids)
    # Checked in and future couples keep their claims (two per person: issue 13.7).
    assert len(claims) == 2 * (2 + 2)


async def test_threshold_bans_a_person_until_lifted(client: httpx.AsyncClient, db: None) -> None:
    await make_office(days_ahead=10)
    await make_office(code="SZ-FT", days_ahead=10)
    settings = get_settings()
    repeat = person()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    first = await confirmed(t0, repeat)
    assert (await no_show.run(t0 + timedelta(hours=1), settings)) == {"marked": 1, "banned": 0}
    t1 = t0 + timedelta(days=1)
    second = await confirmed(t1, repeat)
    assert (await no_show.run(t1 + timedelta(hours=1), settings)) == {"marked": 1, "banned": 1}
    assert await _status(first["reference"]) == await _status(second["reference"]) == "no_show"

    slots = await open_slots(client)
    until = (t1 + timedelta(days=90)).astimezone(SHANGHAI).date().isoformat()
    refused = await client.post(
        "/api/v1/appointments",
        json=booking_body(slots[0]["id"], b=repeat),
        headers={"Accept-Language": "en"},
    )
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/banned") and problem["banned_until"] == until
    assert until in problem["detail"]
    other = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"]))
    assert other.status_code == 201, other.text

    # Admins: the ban arose at GZ-TH. Its admin sees it masked; SZ-FT's admin does not.
    th_admin = await staff_token(client, "th.admin", role="admin")
    ft_admin = await staff_token(client, "ft.admin", role="admin", offices=("SZ-FT",))
    clerk = await staff_token(client, "th.clerk")
    listed = await client.get("/api/v1/admin/bans", headers=th_admin)
    assert listed.status_code == 200
    [ban] = listed.json()
    assert ban["office"] == "GZ-TH" and ban["ends_on"] == until and ban["kind"] == "no_show"
    assert repeat["id_number"] not in listed.text and ban["id_number"].endswith(
        repeat["id_number"][-4:]
    )
    assert (await client.get("/api/v1/admin/bans", headers=ft_admin)).json() == []
    assert (await client.get("/api/v1/admin/bans")).status_code == 401
    assert (await client.get("/api/v1/admin/bans", headers=clerk)).status_code == 403
    url = f"/api/v1/admin/bans/{ban['id']}"
    assert (await client.delete(url)).status_code == 401
    assert (await client.delete(url, headers=clerk)).status_code == 403
    assert (await client.delete(url, headers=ft_admin)).status_code == 404
    assert await audit.entries("ban", ban["id"]) != []  # its creation
    lifted = await client.delete(url, headers=th_admin)
    assert lifted.status_code == 200, lifted.text
    assert (await client.delete(url, headers=th_admin)).status_code == 409
    trail = await audit.entries("ban", ban["id"])
    assert [e["action"] for e in trail] == ["ban.create", "ban.lift"]
    assert trail[1]["actor_name"] == "th.admin" and trail[1]["before"]["active"] is True
    assert (await client.get("/api/v1/admin/bans", headers=th_admin)).json() == []

    again = await client.post("/api/v1/appointments", json=booking_body(slots[1]["id"], a=repeat))
    assert again.status_code == 201, again.text


async def test_a_couples_second_cancellation_bans_at_once(
    client: httpx.AsyncClient, db: None
) -> None:
    await make_office(days_ahead=10)
    superadmin = await staff_token(client, "root", role="superadmin", offices=())
    rule = {"enabled": True, "no_shows": 2, "cancellations": 2, "window_days": 30, "ban_days": 7}
    put = await client.put("/api/v1/admin/policies/no_show", json=rule, headers=superadmin)
    assert put.status_code == 200, put.text
    canceller = person()
    slots = await open_slots(client)
    for n, slot in enumerate(slots[:2]):
        assert await Ban.count() == 0, n  # one cancellation is no ban
        held = await client.post("/api/v1/appointments", json=booking_body(slot["id"], a=canceller))
        assert held.status_code == 201, held.text
        gone = await client.post(
            f"/api/v1/appointments/{held.json()['reference']}/cancel",
            headers={"X-Manage-Token": held.json()["manage_token"]},
        )
        assert gone.status_code == 200, gone.text
    [ban] = await Ban.select()
    assert ban["kind"] == "cancelled" and ban["strikes"] == 2
    refused = await client.post(
        "/api/v1/appointments", json=booking_body(slots[2]["id"], a=canceller)
    )
    assert refused.status_code == 409 and "banned_until" in refused.json()
    # The job's sweep over the same events finds the ban written: still one.
    later = datetime.now(UTC) + no_show.SETTLE + timedelta(seconds=5)
    assert await no_show.evaluate_strikes(later) == 0 and await Ban.count() == 1


async def test_a_ticket_the_queue_marks_missed_counts_once_settled(db: None) -> None:
    await make_office(days_ahead=5)
    office_id = (await Office.select(Office.id).first())["id"]  # type: ignore[index]
    await policies.update(
        "no_show",
        {"enabled": True, "no_shows": 1, "cancellations": 0, "window_days": 30, "ban_days": 5},
        actor=NamedActor("root"),
        now=datetime.now(UTC),
        settings=get_settings(),
    )
    start = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)
    couple = await confirmed(start)
    settings, clerk = get_settings(), NamedActor("th.clerk")
    ticket = await check_in(
        CheckIn(
            office_id=office_id, reference=couple["reference"], parties_present=frozenset("ab")
        ),
        now=start,
        settings=settings,
        actor=clerk,
    )
    at = start + timedelta(minutes=5)
    await call_next(office_id, "1", now=at, actor=clerk, settings=get_settings())
    for _ in range(settings.queue_max_calls - 1):
        await act(ticket["id"], "recall", office_ids=None, now=at, actor=clerk, settings=settings)
    await act(ticket["id"], "no-show", office_ids=None, now=at, actor=clerk, settings=settings)
    assert await _status(couple["reference"]) == "no_show"
    # Events younger than SETTLE are left for the next run; then they count, once.
    assert await no_show.evaluate_strikes(at) == 0
    # One ban per partner: both missed it.
    assert await no_show.evaluate_strikes(at + no_show.SETTLE + timedelta(seconds=1)) == 2
    assert await no_show.evaluate_strikes(at + no_show.SETTLE + timedelta(seconds=2)) == 0
    found = await Ban.select()
    assert len(found) == 2 and {b["kind"] for b in found} == {"no_show"}
    assert all(b["ends_at"] == start + timedelta(days=5) for b in found)
