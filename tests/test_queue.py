"""The on-site queue: check-in rules, the hall cap, call order, transitions, races."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.audit import NamedActor
from scheduler.db.queue_tables import HallCount
from scheduler.db.tables import OutboxMessage
from scheduler.kernel.errors import DomainError
from scheduler.settings import get_settings
from scheduler.usecases.desk import queue
from tests.helpers import booking_body, make_office, open_slots, sms_codes

SETTINGS = get_settings()
BOTH = frozenset({"a", "b"})
CLERK = NamedActor("clerk")


async def _confirmed(client: httpx.AsyncClient, slot: dict[str, Any]) -> dict[str, Any]:
    held = (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).json()
    codes = await sms_codes(held["reference"])
    for role in ("a", "b"):
        await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
    return held


async def _day_of_bookings(
    client: httpx.AsyncClient, count: int, **office: Any
) -> tuple[int, list[dict[str, Any]], datetime]:
    """``count`` confirmed couples on the first open day, and that day's first slot start."""
    office_id = await make_office(slot_cap=50, **office)
    slots = await open_slots(client)
    first_day = [s for s in slots if s["start"] == slots[0]["start"]][:1]
    held = [await _confirmed(client, first_day[0]) for _ in range(count)]
    start = datetime.fromisoformat(held[0]["slot"]["start_at"])
    return office_id, held, start


def _cmd(office_id: int, reference: str, **kw: Any) -> queue.CheckIn:
    return queue.CheckIn(office_id=office_id, reference=reference, parties_present=BOTH, **kw)


async def test_check_in_issues_numbered_tickets_with_service_prefix(
    client: httpx.AsyncClient,
) -> None:
    office_id, held, start = await _day_of_bookings(client, 3)
    labels = [
        (
            await queue.check_in(
                _cmd(office_id, h["reference"]),
                now=start - timedelta(minutes=5),
                settings=SETTINGS,
                actor=CLERK,
            )
        )["label"]
        for h in held
    ]
    assert labels == ["M001", "M002", "M003"]


async def test_check_in_rules(client: httpx.AsyncClient) -> None:
    office_id, held, start = await _day_of_bookings(client, 2)
    ref = held[0]["reference"]

    async def attempt(**kw: Any) -> str:
        now = kw.pop("now", start)
        try:
            await queue.check_in(
                queue.CheckIn(office_id=office_id, reference=ref, **kw),
                now=now,
                settings=SETTINGS,
                actor=CLERK,
            )
        except DomainError as exc:
            return exc.slug
        return "ok"

    assert await attempt(parties_present=frozenset({"a"})) == "both-parties-required"
    assert await attempt(parties_present=BOTH, now=start - timedelta(hours=3)) == "too-early"
    assert await attempt(parties_present=BOTH, now=start - timedelta(days=1)) == "not-today"
    late = start + timedelta(minutes=SETTINGS.checkin_late_minutes + 1)
    assert await attempt(parties_present=BOTH, now=late) == "late-decision-needed"
    assert await attempt(parties_present=BOTH, now=late, accept_late=True) == "ok"
    # Twice: said as "already checked in" with the ticket (issue 14), not "status".
    assert await attempt(parties_present=BOTH, now=late, accept_late=True) == "already-checked-in"
    # Another office's clerk finds nothing.
    with pytest.raises(DomainError) as info:
        await queue.check_in(
            _cmd(office_id + 999, held[1]["reference"]), now=start, settings=SETTINGS, actor=CLERK
        )
    assert info.value.slug == "not-found"


async def test_check_in_by_id_number(client: httpx.AsyncClient) -> None:
    office_id = await make_office(slot_cap=5)
    slot = (await open_slots(client))[0]
    body = booking_body(slot["id"])
    held = (await client.post("/api/v1/appointments", json=body)).json()
    codes = await sms_codes(held["reference"])
    for role in ("a", "b"):
        await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": codes[role]},
        )
    start = datetime.fromisoformat(held["slot"]["start_at"])
    ticket = await queue.check_in(
        queue.CheckIn(
            office_id=office_id, id_number=body["party_b"]["id_number"], parties_present=BOTH
        ),
        now=start,
        settings=SETTINGS,
        actor=CLERK,
    )
    assert ticket["reference"] == held["reference"]


async def test_hall_cap_refuses_check_in_with_expected_wait(client: httpx.AsyncClient) -> None:
    # Hall cap 4 people: two couples per hour window can book; three are present
    # at once when the 10:00 couple arrives early, during the 09:00 hour.
    office_id = await make_office(slot_cap=5, onsite_cap=4)
    slots = await open_slots(client)
    nine, ten = slots[0], next(s for s in slots if s["start"] == "10:00")
    held = [
        await _confirmed(client, nine),
        await _confirmed(client, nine),
        await _confirmed(client, ten),
    ]
    start = datetime.fromisoformat(held[0]["slot"]["start_at"])
    for h in held[:2]:
        await queue.check_in(
            _cmd(office_id, h["reference"]), now=start, settings=SETTINGS, actor=CLERK
        )
    with pytest.raises(DomainError) as info:
        await queue.check_in(
            _cmd(office_id, held[2]["reference"]), now=start, settings=SETTINGS, actor=CLERK
        )
    assert info.value.slug == "hall-full" and info.value.params["minutes"] > 0
    # A couple finishes: the hall has room again.
    ticket = await queue.call_next(office_id, "1", now=start, actor=CLERK, settings=get_settings())
    await queue.act(
        ticket["id"], "complete", office_ids=None, now=start, actor=CLERK, settings=SETTINGS
    )
    await queue.check_in(
        _cmd(office_id, held[2]["reference"]), now=start, settings=SETTINGS, actor=CLERK
    )
    hall = await HallCount.select().first()
    assert hall["people"] == 4


async def test_calls_follow_appointment_order_and_priority_cannot_starve(
    client: httpx.AsyncClient,
) -> None:
    office_id, held, start = await _day_of_bookings(client, 3)
    for i, h in enumerate(held):
        await queue.check_in(
            _cmd(office_id, h["reference"], priority=(i == 2)),
            now=start + timedelta(minutes=i),
            settings=SETTINGS,
            actor=CLERK,
        )
    order = [
        (await queue.call_next(office_id, "1", now=start, actor=CLERK, settings=get_settings()))[
            "label"
        ]
        for _ in range(3)
    ]
    # The priority couple goes first; the others keep their order.
    assert order == ["M003", "M001", "M002"]
    with pytest.raises(DomainError) as info:
        await queue.call_next(office_id, "1", now=start, actor=CLERK, settings=get_settings())
    assert info.value.slug == "queue-empty"


@pytest.mark.parametrize("clerks", [2, 8])
async def test_clerks_calling_at_once_get_distinct_tickets(
    client: httpx.AsyncClient, clerks: int
) -> None:
    office_id, held, start = await _day_of_bookings(client, 8)
    for h in held:
        await queue.check_in(
            _cmd(office_id, h["reference"]), now=start, settings=SETTINGS, actor=CLERK
        )

    async def clerk(n: int) -> list[str]:
        got = []
        while True:
            try:
                got.append(
                    (
                        await queue.call_next(
                            office_id,
                            str(n),
                            now=start,
                            actor=NamedActor(f"c{n}"),
                            settings=get_settings(),
                        )
                    )["label"]
                )
            except DomainError:
                return got

    results = await asyncio.gather(*[clerk(n) for n in range(clerks)])
    labels = [label for r in results for label in r]
    assert sorted(labels) == sorted(f"M{i:03d}" for i in range(1, 9))  # each once, none lost


async def test_transitions_missed_requeue_once_and_sms_on_call(client: httpx.AsyncClient) -> None:
    office_id, held, start = await _day_of_bookings(client, 1)
    settings = replace(SETTINGS, queue_max_calls=2)
    await queue.check_in(
        _cmd(office_id, held[0]["reference"]), now=start, settings=settings, actor=CLERK
    )
    ticket = await queue.call_next(office_id, "3", now=start, actor=CLERK, settings=get_settings())
    with pytest.raises(DomainError):  # one call is not enough to mark missed
        await queue.act(
            ticket["id"], "no-show", office_ids=None, now=start, actor=CLERK, settings=settings
        )
    await queue.act(
        ticket["id"], "recall", office_ids=None, now=start, actor=CLERK, settings=settings
    )
    missed = await queue.act(
        ticket["id"], "no-show", office_ids=None, now=start, actor=CLERK, settings=settings
    )
    assert missed["status"] == "missed"
    again = await queue.act(
        ticket["id"], "requeue", office_ids=None, now=start, actor=CLERK, settings=settings
    )
    assert again["status"] == "waiting"
    await queue.call_next(office_id, "3", now=start, actor=CLERK, settings=get_settings())
    await queue.act(
        ticket["id"], "recall", office_ids=None, now=start, actor=CLERK, settings=settings
    )
    await queue.act(
        ticket["id"], "no-show", office_ids=None, now=start, actor=CLERK, settings=settings
    )
    with pytest.raises(DomainError) as info:
        await queue.act(
            ticket["id"], "requeue", office_ids=None, now=start, actor=CLERK, settings=settings
        )
    assert info.value.params.get("reason") == "requeued"
    # Another office cannot touch it.
    with pytest.raises(DomainError) as other:
        await queue.act(
            ticket["id"],
            "recall",
            office_ids=frozenset({office_id + 1}),
            now=start,
            actor=CLERK,
            settings=settings,
        )
    assert other.value.slug == "not-found"
    # Each call texted both partners with the counter (4 calls x 2 parties).
    called = await OutboxMessage.select(OutboxMessage.body).where(
        OutboxMessage.template == "called"
    )
    assert len(called) == 8 and all("3" in r["body"] and "M001" in r["body"] for r in called)
