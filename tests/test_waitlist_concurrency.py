"""Under concurrent cancellations every freed seat is offered to exactly one couple,
in join order; no seat is double-offered or lost; lapsed offers pass on.

20 couples hold a full day (one slot of 20 seats); 30 couples wait. All 20 cancel at
once through the API while the periodic job runs alongside (as in other processes).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from scheduler.settings import get_settings
from tests.helpers import gather
from tests.waitlist_helpers import fill, join_and_verify, join_body, one_slot_office, target_slot

SEATS = 20
WAITING = 30


async def entries() -> list[dict[str, Any]]:
    """Every entry in join order, with its appointment's slot and status."""
    from scheduler.db.waitlist_tables import WaitlistEntry

    return list(
        await WaitlistEntry.raw(
            "SELECT e.id, e.reference, e.status, e.appointment_id, a.slot, a.status AS a_status"
            " FROM waitlist_entry e LEFT JOIN appointment a ON a.id = e.appointment_id"
            " ORDER BY e.joined_at, e.id"
        )
    )


async def check_seats(slot_id: int) -> int:
    """The slot and day counters equal a recount of the appointments holding a seat."""
    from scheduler.db.tables import Appointment, Slot
    from tests.support.day_counters import check_days

    holding = await Appointment.count().where(
        (Appointment.slot == slot_id)
        & Appointment.status.is_in(["pending_confirmation", "confirmed"])
    )
    slot = await Slot.select(Slot.booked, Slot.day, Slot.office).where(Slot.id == slot_id).first()
    assert slot is not None
    assert slot["booked"] == holding
    await check_days()
    return holding


async def offer_messages() -> Counter[str]:
    from scheduler.db.tables import OutboxMessage

    rows = await OutboxMessage.select(OutboxMessage.key).where(
        OutboxMessage.template == "waitlist_offer"
    )
    # key: waitlist:<entry>:offer:<appointment>:<role>
    return Counter(":".join(r["key"].split(":")[:2]) for r in rows)


async def test_concurrent_cancellations_offer_each_seat_once_in_join_order(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.usecases.booking.lifecycle import expire_holds
    from scheduler.usecases.waitlist.offers import run

    await one_slot_office(cap=SEATS)
    slot = await target_slot(client)
    held = await fill(client, slot["id"], SEATS)
    for _ in range(WAITING):
        await join_and_verify(client, join_body(slot["date"]))
    assert [e["status"] for e in await entries()] == ["waiting"] * WAITING

    now = datetime.now(UTC)
    responses = await gather(
        *[
            client.post(
                f"/api/v1/appointments/{h['reference']}/cancel",
                headers={"X-Manage-Token": h["manage_token"]},
            )
            for h in held
        ],
        *[run(now, get_settings()) for _ in range(3)],  # the safety-net job racing the hooks
    )
    assert all(r.status_code == 200 for r in responses[:SEATS]), [r.text for r in responses]

    rows = await entries()
    statuses = [e["status"] for e in rows]
    assert statuses == ["offered"] * SEATS + ["waiting"] * (WAITING - SEATS)
    offered = rows[:SEATS]
    assert len({e["appointment_id"] for e in offered}) == SEATS  # one seat each, none shared
    assert all(e["slot"] == slot["id"] and e["a_status"] == "pending_confirmation" for e in offered)
    assert await check_seats(slot["id"]) == SEATS  # nothing lost, nothing oversold
    assert set((await offer_messages()).values()) == {2}  # one offer (two texts) per couple
    assert len(await offer_messages()) == SEATS

    # All 20 offers lapse: the seats pass to the remaining 10, the rest stay free.
    later = now + timedelta(minutes=61)
    assert await expire_holds(later, settings=get_settings()) == SEATS
    await run(later, get_settings())
    statuses = [e["status"] for e in await entries()]
    assert statuses == ["lapsed"] * SEATS + ["offered"] * (WAITING - SEATS)
    assert await check_seats(slot["id"]) == WAITING - SEATS
    assert len(await offer_messages()) == WAITING
    assert (await target_slot(client))["remaining"] == SEATS - (WAITING - SEATS)
