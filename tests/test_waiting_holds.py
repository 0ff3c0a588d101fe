"""Holds waiting for a seat are bounded per slot (issue 16), through the public API
with the limits as deployed (config/example.env), on both databases.

Beyond the unconfirmed share (HOLD_UNCONFIRMED_PERCENT) a hold takes no seat and
waits for both codes; a slot accepts such waiting holds only while they number fewer
than HOLD_WAITING_PER_FREE_SEAT x its seats not yet taken. Beyond that the couple
hears ``409 slot-full``: nothing stored, nothing texted. The count (``slot.waiting``,
``appointment.wait_slot``) is given back once when the hold takes its seat or ends
(confirmation refused, cancel, expiry, code lock-out, the expiry job's stray sweep).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.tables import Appointment, OutboxMessage, Slot
from scheduler.settings import get_settings
from tests.helpers import booking_body, gather, make_office, open_slots, person, sms_codes
from tests.test_personal_data import (  # noqa: F401 - the scratch_db fixture
    MIGRATE_TO,
    _python,
    _run_sql,
    scratch_db,
)
from tests.test_squatting import (
    DEPLOYED,
    assert_held_counters,
    client_of,
    confirm,
    deployed_app,
    slug,
)

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture(autouse=True)
def fresh_policies() -> Any:
    """Policies are cached per process (phone regions); none leaks between tests."""
    from scheduler.usecases.policy import policies

    policies.invalidate()
    yield
    policies.invalidate()


async def assert_waiting_counters() -> None:
    """Every slot's ``waiting`` equals the pending holds counted there, and nothing
    that is not a pending hold waiting for a seat is counted anywhere."""
    rows = await Appointment.select(
        Appointment.wait_slot, Appointment.status, Appointment.awaiting_seat
    ).where(Appointment.wait_slot.is_not_null())
    assert all(r["status"] == "pending_confirmation" and r["awaiting_seat"] for r in rows), rows
    per_slot = Counter(r["wait_slot"] for r in rows)
    for s in await Slot.select(Slot.id, Slot.waiting):
        assert s["waiting"] == per_slot[s["id"]], s
    unseated = await Appointment.count().where(
        (Appointment.status == "pending_confirmation") & Appointment.awaiting_seat.eq(True)
    )
    assert unseated == len(rows)


async def counters(slot_id: int) -> tuple[int, int, int]:
    """(booked, held, waiting) of a slot."""
    row = await Slot.select(Slot.booked, Slot.held, Slot.waiting).where(Slot.id == slot_id).first()
    assert row is not None
    return row["booked"], row["held"], row["waiting"]


async def code_texts() -> int:
    return await OutboxMessage.count().where(OutboxMessage.template == "code")


async def book(client: httpx.AsyncClient, slot_id: int) -> httpx.Response:
    return await client.post("/api/v1/appointments", json=booking_body(slot_id))


async def cancel(client: httpx.AsyncClient, held: dict[str, Any]) -> None:
    gone = await client.post(
        f"/api/v1/appointments/{held['reference']}/cancel",
        headers={"X-Manage-Token": held["manage_token"]},
    )
    assert gone.status_code == 200, gone.text


async def test_60_couples_at_a_10_seat_slot_5_hold_5_wait_50_hear_slot_full() -> None:
    await make_office(slot_cap=10)
    app = deployed_app()
    async with client_of(app) as client:
        slot = (await open_slots(client))[0]
        answers = await gather(*(book(client, slot["id"]) for _ in range(60)))
        outcome = Counter((r.status_code, slug(r) if r.status_code >= 400 else "") for r in answers)
        assert outcome == Counter({(201, ""): 10, (409, "slot-full"): 50}), outcome
        held = [r.json() for r in answers if r.status_code == 201]
        assert sorted(h.get("seat_held", True) for h in held) == [False] * 5 + [True] * 5
        # Only the 10 couples held were texted (two codes each), nobody refused was.
        assert await code_texts() == 20
        assert await Appointment.count() == 10
        assert await counters(slot["id"]) == (5, 5, 5)
        await assert_waiting_counters()
        await assert_held_counters()


async def test_a_waiting_hold_that_confirms_takes_its_seat_and_frees_its_place() -> None:
    await make_office(slot_cap=4)
    app = deployed_app()
    async with client_of(app) as client:
        slot = (await open_slots(client))[0]
        first = [(await book(client, slot["id"])).json() for _ in range(4)]
        assert [h.get("seat_held", True) for h in first] == [True, True, False, False]
        assert await counters(slot["id"]) == (2, 2, 2)
        # Two waiting for the two seats not taken: the next couple hears slot-full.
        full = await book(client, slot["id"])
        assert full.status_code == 409 and slug(full) == "slot-full", full.text
        # A waiting couple confirms: its seat is taken and its waiting place given back,
        # but one seat is left and one couple waits for it: still no place to wait.
        done = await confirm(client, first[2]["reference"])
        assert done.json()["status"] == "confirmed" and done.json().get("seat_held", True)
        assert await counters(slot["id"]) == (3, 2, 1)
        again = await book(client, slot["id"])
        assert again.status_code == 409 and slug(again) == "slot-full", again.text
        # The other waiting couple gives up: the seat left has no couple waiting for
        # it, so the next couple may wait for it, and confirms into it.
        await cancel(client, first[3])
        assert await counters(slot["id"]) == (3, 2, 0)
        late = await book(client, slot["id"])
        assert late.status_code == 201 and late.json()["seat_held"] is False, late.text
        assert await counters(slot["id"]) == (3, 2, 1)
        await confirm(client, late.json()["reference"])
        assert await counters(slot["id"]) == (4, 2, 0)
        # No seat left: nobody may wait, the share is still full.
        none = await book(client, slot["id"])
        assert none.status_code == 409 and slug(none) == "slot-full", none.text
        await assert_waiting_counters()
        await assert_held_counters()


async def test_an_ended_waiting_hold_frees_its_place_however_it_ends() -> None:
    """Cancelled, expired (the job and a late confirmation), locked out by wrong codes:
    each gives its waiting place back once, and the next couple may wait in it."""
    from scheduler.usecases.booking import lifecycle as booking

    await make_office(slot_cap=10, hold_minutes=15)
    app = deployed_app()
    async with client_of(app) as client:
        slot = (await open_slots(client))[0]
        answers = await gather(*(book(client, slot["id"]) for _ in range(12)))
        assert Counter(r.status_code for r in answers) == Counter({201: 10, 409: 2})
        waiting = [r.json() for r in answers if r.status_code == 201]
        waiting = [h for h in waiting if h.get("seat_held", True) is False]
        assert len(waiting) == 5 and await counters(slot["id"]) == (5, 5, 5)

        await cancel(client, waiting[0])
        assert await counters(slot["id"]) == (5, 5, 4)
        await assert_waiting_counters()

        url = f"/api/v1/appointments/{waiting[1]['reference']}/confirm"
        for _ in range(get_settings().code_max_attempts):
            wrong = await client.post(url, json={"party": "a", "code": "000000"})
        assert slug(wrong) == "too-many-attempts", wrong.text
        assert await counters(slot["id"]) == (5, 5, 3)
        await assert_waiting_counters()

        # The place freed is taken again (texts: two more), then full once more.
        texts = await code_texts()
        refills = [await book(client, slot["id"]) for _ in range(3)]
        assert [r.status_code for r in refills] == [201, 201, 409]
        assert [r.json().get("seat_held") for r in refills[:2]] == [False, False]
        assert await code_texts() == texts + 4
        assert await counters(slot["id"]) == (5, 5, 5)

        # Expiry: the job ends every hold nobody started (the short first hold time).
        later = datetime.now(UTC) + timedelta(minutes=DEPLOYED["hold_unstarted_minutes"] + 1)
        # 5 holding a seat, 5 waiting (3 of the first, the 2 refills).
        assert await booking.expire_holds(later, settings=get_settings()) == 10
        assert await counters(slot["id"]) == (0, 0, 0)
        await assert_waiting_counters()
        await assert_held_counters()
        ended = await Appointment.select(Appointment.wait_slot).where(
            Appointment.status == "expired"
        )
        assert ended and all(r["wait_slot"] is None for r in ended)


async def test_a_waiting_hold_refused_at_confirmation_gives_its_place_back() -> None:
    """With two waiting holds per free seat, the second couple to confirm finds the
    seat taken: its hold ends slot-full and its waiting place is given back."""
    await make_office(slot_cap=2)
    app = deployed_app(hold_waiting_per_free_seat=2)
    async with client_of(app) as client:
        slot = (await open_slots(client))[0]
        held = [await book(client, slot["id"]) for _ in range(4)]
        assert [r.status_code for r in held] == [201, 201, 201, 409]
        first, w1, w2 = (r.json() for r in held[:3])
        assert (w1["seat_held"], w2["seat_held"]) == (False, False)
        assert await counters(slot["id"]) == (1, 1, 2)
        await confirm(client, w1["reference"])
        assert await counters(slot["id"]) == (2, 1, 1)
        sent = await sms_codes(w2["reference"])
        url = f"/api/v1/appointments/{w2['reference']}/confirm"
        await client.post(url, json={"party": "a", "code": sent["a"]})
        late = await client.post(url, json={"party": "b", "code": sent["b"]})
        assert late.status_code == 409 and slug(late) == "slot-full", late.text
        assert await counters(slot["id"]) == (2, 1, 0)
        await assert_waiting_counters()
        assert first.get("seat_held", True)


async def test_with_no_waiting_holds_a_hold_beyond_the_share_is_refused() -> None:
    await make_office(slot_cap=10)
    app = deployed_app(hold_waiting_per_free_seat=0)
    async with client_of(app) as client:
        slot = (await open_slots(client))[0]
        answers = await gather(*(book(client, slot["id"]) for _ in range(12)))
        outcome = Counter((r.status_code, slug(r) if r.status_code >= 400 else "") for r in answers)
        assert outcome == Counter({(201, ""): 5, (409, "slot-full"): 7}), outcome
        assert all(r.json().get("seat_held", True) for r in answers if r.status_code == 201)
        assert await code_texts() == 10
        assert await counters(slot["id"]) == (5, 5, 0)
        await assert_waiting_counters()


async def test_the_expiry_sweep_gives_back_a_waiting_place_left_by_another_path() -> None:
    """A hold that leaves pending_confirmation by a path that does not give its counts
    back (a blackout's run may end holds) keeps no waiting place: the expiry job's
    sweep returns it."""
    from scheduler.usecases.booking import lifecycle as booking

    await make_office(slot_cap=2)
    app = deployed_app()
    async with client_of(app) as client:
        slot = (await open_slots(client))[0]
        _, beyond = [(await book(client, slot["id"])).json() for _ in range(2)]
        assert beyond["seat_held"] is False and await counters(slot["id"]) == (1, 1, 1)
        # Another path ends it (only the status: that path gives no count back).
        await Appointment.update({Appointment.status: "expired"}).where(
            Appointment.reference == beyond["reference"]
        )
        await booking.expire_holds(datetime.now(UTC), settings=get_settings())
        assert await counters(slot["id"]) == (1, 1, 0)
        await assert_waiting_counters()
        nxt = await book(client, slot["id"])
        assert nxt.status_code == 201 and nxt.json()["seat_held"] is False


async def test_the_early_refusal_reads_the_waiting_places_from_the_slot() -> None:
    """``admit_hold`` answers slot-full before any write when the slot's share and its
    waiting places are both full, and lets a hold through while either has room."""
    from scheduler.db.records import load_slot
    from scheduler.kernel.errors import DomainError
    from scheduler.usecases.booking.checks import Bookable, admit_hold

    await make_office(slot_cap=4)
    settings = replace(get_settings(), **DEPLOYED)
    app = deployed_app()
    async with client_of(app) as client:
        slot_id = (await open_slots(client))[0]["id"]
        parties = [("a", "mainland_id", person()["id_number"])]
        parties.append(("b", "mainland_id", person()["id_number"]))
        now = datetime.now(UTC)
        for expected in ((1, 0), (2, 0), (2, 1), (2, 2)):
            slot = await load_slot(slot_id)
            assert slot is not None  # room left: passes below
            await admit_hold(Bookable(slot, None), "marriage", parties, now, settings)
            assert (await book(client, slot_id)).status_code == 201
            assert (await counters(slot_id))[1:] == expected
        slot = await load_slot(slot_id)
        assert slot is not None and (slot.held, slot.waiting) == (2, 2)
        with pytest.raises(DomainError) as refused:
            await admit_hold(Bookable(slot, None), "marriage", parties, now, settings)
        assert refused.value.slug == "slot-full"


BEFORE = "2026-12-04T11:00:00:000000"  # the last migration before the waiting count
WAITING = "2026-12-05T01:00:00:000000"
MIGRATE_BACK = (
    "import asyncio, sys, scheduler\n"
    "from piccolo.apps.migrations.commands.backwards import run_backwards\n"
    "r = asyncio.run(run_backwards(app_name='scheduler', migration_id=sys.argv[1],"
    " auto_agree=True))\n"
    "sys.exit(0 if r.success else 1)\n"
)


def _rows() -> list[str]:
    appointment = (
        "INSERT INTO appointment (id, reference, manage_token_hash, office, slot, service,"
        " status, awaiting_seat) VALUES ({}, 'GZTH-AAAA-000{}', 'x', 1, {}, 'marriage', '{}', {})"
    )
    slot = (
        "INSERT INTO slot (id, office, service, day, start_at, end_at, capacity, booked)"
        " VALUES ({0}, 1, 'marriage', '2026-12-20', '2026-12-20 0{0}:00:00+00:00',"
        " '2026-12-20 0{0}:30:00+00:00', 4, 1)"
    )
    return [
        "INSERT INTO office (id, code, name_zh, name_en) VALUES (1, 'GZ-TH', '天河', 'Tianhe')",
        slot.format(1),
        slot.format(2),
        appointment.format(1, 1, 1, "pending_confirmation", "TRUE"),
        appointment.format(2, 2, 1, "pending_confirmation", "TRUE"),
        appointment.format(3, 3, 1, "pending_confirmation", "FALSE"),
        appointment.format(4, 4, 1, "expired", "TRUE"),
        appointment.format(5, 5, 2, "pending_confirmation", "TRUE"),
        appointment.format(6, 6, 2, "confirmed", "FALSE"),
    ]


async def _on(database_url: str, *args: str) -> None:
    done = await _python(list(args), DATABASE_URL=database_url)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_the_migration_counts_the_holds_waiting_now(
    scratch_db: str,  # noqa: F811 - the fixture
) -> None:
    await _on(scratch_db, "-c", MIGRATE_TO, BEFORE)  # the schema as deployments have it
    await _run_sql(scratch_db, [*_rows(), "SELECT 1 AS one"])
    await _on(scratch_db, "-m", "scheduler", "migrate")
    rows = await _run_sql(scratch_db, ["SELECT id, wait_slot FROM appointment ORDER BY id"])
    assert [r["wait_slot"] for r in rows] == [1, 1, None, None, 2, None]
    slots = await _run_sql(scratch_db, ["SELECT id, waiting FROM slot ORDER BY id"])
    assert slots == [{"id": 1, "waiting": 2}, {"id": 2, "waiting": 1}]
    # Back: both columns gone, every row kept; and forwards again.
    await _on(scratch_db, "-c", MIGRATE_BACK, WAITING)
    rows = await _run_sql(scratch_db, ["SELECT * FROM appointment ORDER BY id"])
    assert len(rows) == 6 and "wait_slot" not in rows[0]
    assert "waiting" not in (await _run_sql(scratch_db, ["SELECT * FROM slot"]))[0]
    await _on(scratch_db, "-m", "scheduler", "migrate")
    slots = await _run_sql(scratch_db, ["SELECT id, waiting FROM slot ORDER BY id"])
    assert slots == [{"id": 1, "waiting": 2}, {"id": 2, "waiting": 1}]


def test_the_setting_is_an_integer_from_0_to_10() -> None:
    from scheduler.settings import SettingsError, parse_settings

    assert parse_settings({}).hold_waiting_per_free_seat == 1
    assert parse_settings({"HOLD_WAITING_PER_FREE_SEAT": "0"}).hold_waiting_per_free_seat == 0
    assert parse_settings({"HOLD_WAITING_PER_FREE_SEAT": "10"}).hold_waiting_per_free_seat == 10
    for bad in ("-1", "11", "1.5", "many"):
        with pytest.raises(SettingsError, match="HOLD_WAITING_PER_FREE_SEAT"):
            parse_settings({"HOLD_WAITING_PER_FREE_SEAT": bad})
