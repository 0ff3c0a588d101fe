"""Lotteries through the API on a real database: admin permissions and input,
first come refused on a lottery date, applications (one per ID, both codes,
withdraw), the draw job (caps, one SMS per party, safe to re-run and to run
twice at once), lapsed winners' seats passed on in draw order."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.db.lottery_tables import Lottery, LotteryApplication
from scheduler.db.tables import Appointment, AuditLog, OfficeDay, OutboxMessage, Party, Slot
from scheduler.domain.lottery import draw_order
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.calendar import lottery_days
from scheduler.usecases.lottery import draw as lottery
from tests.helpers import booking_body, make_office, person, staff_token

DAY_CAP = 5  # seats on the lottery date
DAYS = 8  # booking window (slots exist that far)


async def lottery_day(office_id: int) -> date:
    """A day 4 or more days ahead with slots (holidays have none)."""
    first = date.today() + timedelta(days=4)
    row = await (
        Slot.select(Slot.day)
        .where((Slot.office == office_id) & (Slot.day >= first))
        .order_by(Slot.day)
        .first()
    )
    assert row is not None
    return row["day"]


def new_lottery(day: date, **extra: Any) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "offices": ["GZ-TH"],
        "opens_days_before": 3,
        "opens_at": "09:00",
        "closes_days_before": 1,
        "closes_at": "09:00",
        "confirm_hours": 12,
    } | extra


@pytest.fixture
async def setup(client: httpx.AsyncClient, db: None) -> dict[str, Any]:
    """GZ-TH (5 couples a day) with a lottery whose window is open now, SZ-FT, and
    an admin of GZ-TH."""
    office_id = await make_office(code="GZ-TH", slot_cap=2, day_cap=DAY_CAP, days_ahead=DAYS)
    await make_office(code="SZ-FT", days_ahead=DAYS)
    admin = await staff_token(client, "lot.admin", role="admin", offices=("GZ-TH",))
    day = await lottery_day(office_id)
    resp = await client.post("/api/v1/admin/lotteries", json=new_lottery(day), headers=admin)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    # The window opened an hour ago (the lottery was declared before it, as required).
    await Lottery.update({Lottery.opens_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        Lottery.id == body["id"]
    )
    return {"id": body["id"], "day": day, "admin": admin, "office_id": office_id, "view": body}


async def codes(reference: str) -> dict[str, str]:
    rows = await (
        OutboxMessage.select(OutboxMessage.key, OutboxMessage.payload)
        .where(OutboxMessage.template == "lottery_code")
        .output(load_json=True)
    )
    return {
        r["key"].rsplit(":", 1)[1]: r["payload"]["code"]
        for r in rows
        if r["payload"]["reference"] == reference
    }


def application(
    a: dict[str, str] | None = None, b: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "party_a": a or person(),
        "party_b": b or person(),
        "preferences": [{"office": "GZ-TH", "start": None}],
        "locale": "zh-Hans",
    } | extra


async def apply(
    client: httpx.AsyncClient, lottery_id: int, confirm: bool = True, **kw: Any
) -> dict[str, Any]:
    resp = await client.post(f"/api/v1/lotteries/{lottery_id}/applications", json=application(**kw))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    if confirm:
        for party, code in (await codes(body["reference"])).items():
            url = f"/api/v1/lotteries/{lottery_id}/applications/{body['reference']}/confirm"
            done = await client.post(url, json={"party": party, "code": code})
            assert done.status_code == 200, done.text
        assert done.json()["status"] == "confirmed"
    return body


async def close_window(lottery_id: int) -> None:
    await Lottery.update({Lottery.closes_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Lottery.id == lottery_id
    )


async def test_admin_endpoints_are_guarded_scoped_and_audited(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    lid, day = setup["id"], setup["day"]
    assert (await client.get("/api/v1/admin/lotteries")).status_code == 401
    clerk = await staff_token(client, "lot.clerk", role="clerk", offices=("GZ-TH",))
    assert (await client.get("/api/v1/admin/lotteries", headers=clerk)).status_code == 403
    other = await staff_token(client, "sz.admin", role="admin", offices=("SZ-FT",))
    assert (await client.get(f"/api/v1/admin/lotteries/{lid}", headers=other)).status_code == 404
    assert (await client.delete(f"/api/v1/admin/lotteries/{lid}", headers=other)).status_code == 404
    resp = await client.post(
        "/api/v1/admin/lotteries", json=new_lottery(day, offices=["GZ-TH"]), headers=other
    )
    assert resp.status_code == 404
    assert [
        x["id"] for x in (await client.get("/api/v1/admin/lotteries", headers=other)).json()
    ] == []
    mine = await client.get(f"/api/v1/admin/lotteries/{lid}", headers=setup["admin"])
    assert mine.status_code == 200 and mine.json()["offices"] == ["GZ-TH"]
    # The seed stays secret before the draw; its hash is public from the start.
    public = (await client.get(f"/api/v1/lotteries/{lid}")).json()
    assert public["seed"] is None and len(public["seed_sha256"]) == 64
    assert public["seed_sha256"] == setup["view"]["seed_sha256"]
    audit = await AuditLog.select().where(AuditLog.action == "lottery.create")
    assert [a["actor_name"] for a in audit] == ["lot.admin"]
    # One lottery per office, date and service.
    again = await client.post(
        "/api/v1/admin/lotteries", json=new_lottery(day), headers=setup["admin"]
    )
    assert again.status_code == 409 and again.json()["type"].endswith("/lottery-exists")
    # Cancelling needs the window not yet open (it opened an hour ago).
    gone = await client.delete(f"/api/v1/admin/lotteries/{lid}", headers=setup["admin"])
    assert gone.status_code == 409 and gone.json()["type"].endswith("/lottery-closed")


BAD_LOTTERIES: list[tuple[dict[str, Any], str | None]] = [
    ({"opens_days_before": 1, "closes_days_before": 0}, "confirm_hours"),  # no time left
    ({"opens_days_before": 90}, "opens_days_before"),  # opened in the past
    ({"closes_days_before": 3, "closes_at": "08:00"}, "closes_days_before"),  # before opening
    ({"offices": ["NOPE"]}, "offices"),
    ({"offices": []}, "offices"),
    ({"confirm_hours": 0}, "confirm_hours"),
    ({"opens_at": "25:00"}, "opens_at"),
    ({"seats": 3}, None),
    ({"service": "divorce"}, "service"),  # not offered at GZ-TH
]


async def test_bad_lottery_input_is_422_and_stores_nothing(
    client: httpx.AsyncClient, db: None
) -> None:
    office_id = await make_office(code="GZ-TH", days_ahead=DAYS)
    admin = await staff_token(client, "lot.admin", role="admin", offices=("GZ-TH",))
    day = await lottery_day(office_id)
    for change, field in BAD_LOTTERIES:
        resp = await client.post(
            "/api/v1/admin/lotteries", json=new_lottery(day) | change, headers=admin
        )
        assert resp.status_code == 422, (change, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        if field is not None:
            assert (resp.json().get("field") or "").startswith(field), (change, resp.json())
    assert await Lottery.count() == 0
    assert await AuditLog.count().where(AuditLog.action == "lottery.create") == 0


async def test_first_come_is_refused_and_availability_says_lottery(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    day = setup["day"]
    slot = (
        await Slot.select(Slot.id)
        .where((Slot.office == setup["office_id"]) & (Slot.day == day))
        .first()
    )
    resp = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    assert resp.status_code == 409 and resp.json()["type"].endswith("/lottery-date")
    assert await Appointment.count() == 0
    avail = await client.get(
        "/api/v1/offices/GZ-TH/availability",
        params={"service": "marriage", "from": day.isoformat(), "to": day.isoformat()},
    )
    (shown,) = avail.json()["days"]
    assert shown["status"] == "lottery" and shown["slots"] == []
    assert shown["lottery"]["id"] == setup["id"]
    assert shown["lottery"]["closes_at"] == setup["view"]["closes_at"]
    # The other office's same date is business as usual.
    other = await client.get(
        "/api/v1/offices/SZ-FT/availability",
        params={"service": "marriage", "from": day.isoformat(), "to": day.isoformat()},
    )
    assert other.json()["days"][0]["status"] != "lottery"


async def test_apply_confirm_view_withdraw_and_one_application_per_id(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    lid = setup["id"]
    a, b = person(), person()
    body = await apply(client, lid, confirm=False, a=a, b=b)
    assert body["status"] == "pending_confirmation" and body["manage_token"]
    assert body["parties"][0]["id_number_masked"] != a["id_number"]
    # Either partner, in either role, in another application: refused.
    for kw in ({"a": b}, {"b": a}):
        again = await client.post(f"/api/v1/lotteries/{lid}/applications", json=application(**kw))
        assert again.status_code == 409 and again.json()["type"].endswith("/already-applied")
    # No ID number is stored in plaintext.
    parties = await Party.select().where(Party.application.is_not_null())
    assert len(parties) == 2
    assert all(a["id_number"] not in str(p) and b["id_number"] not in str(p) for p in parties)
    url = f"/api/v1/lotteries/{lid}/applications/{body['reference']}"
    assert (await client.get(url, headers={"X-Manage-Token": "wrong"})).status_code == 404
    wrong = await client.post(url + "/confirm", json={"party": "a", "code": "000000"})
    assert wrong.status_code == 422 and wrong.json()["type"].endswith("/wrong-code")
    sent = await codes(body["reference"])
    first = await client.post(url + "/confirm", json={"party": "a", "code": sent["a"]})
    assert first.json()["status"] == "pending_confirmation"
    done = await client.post(url + "/confirm", json={"party": "b", "code": sent["b"]})
    assert done.json()["status"] == "confirmed"
    token = {"X-Manage-Token": body["manage_token"]}
    assert (await client.get(url, headers=token)).json()["status"] == "confirmed"
    assert (await client.post(url + "/withdraw")).status_code == 404  # no token
    gone = await client.post(url + "/withdraw", headers=token)
    assert gone.status_code == 200 and gone.json()["status"] == "withdrawn"
    # Withdrawn: the same people may apply again.
    await apply(client, lid, a=a, b=b)


BAD_APPLICATIONS: list[dict[str, Any]] = [
    {"preferences": []},
    {"preferences": [{"office": "GZ-TH"}] * 4},
    {"preferences": [{"office": "SZ-FT"}]},  # not an office of this lottery
    {"preferences": [{"office": "GZ-TH", "start": "03:00"}]},  # no such slot
    {"preferences": [{"office": "GZ-TH", "start": "9:00"}]},
    {"preferences": [{"office": "GZ-TH"}, {"office": "GZ-TH"}]},  # twice the same
    {"party_a": {"name": "x", "id_type": "mainland_id", "id_number": "1", "phone": "1"}},
    {"extra": 1},
    {"locale": "fr"},
]


async def test_bad_application_is_422_and_stores_nothing(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    for change in BAD_APPLICATIONS:
        resp = await client.post(
            f"/api/v1/lotteries/{setup['id']}/applications", json=application() | change
        )
        assert resp.status_code == 422, (change, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert await LotteryApplication.count() == 0 and await OutboxMessage.count() == 0


async def test_applications_only_while_the_window_is_open(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    body = await apply(client, setup["id"], confirm=False)
    await close_window(setup["id"])
    late = await client.post(f"/api/v1/lotteries/{setup['id']}/applications", json=application())
    assert late.status_code == 409 and late.json()["type"].endswith("/lottery-closed")
    url = f"/api/v1/lotteries/{setup['id']}/applications/{body['reference']}"
    sent = await codes(body["reference"])
    resp = await client.post(url + "/confirm", json={"party": "a", "code": sent["a"]})
    assert resp.status_code == 409 and resp.json()["type"].endswith("/lottery-closed")
    withdraw = await client.post(
        url + "/withdraw", headers={"X-Manage-Token": body["manage_token"]}
    )
    assert withdraw.status_code == 409
    assert (await client.get("/api/v1/lotteries/999999")).status_code == 404


async def seats_taken(office_id: int, day: date) -> tuple[int, int]:
    slots = await Slot.select(Slot.booked).where((Slot.office == office_id) & (Slot.day == day))
    office_day = (
        await OfficeDay.select(OfficeDay.booked)
        .where((OfficeDay.office == office_id) & (OfficeDay.day == day))
        .first()
    )
    return sum(s["booked"] for s in slots), office_day["booked"]


async def test_the_draw_seats_winners_within_caps_once_and_publishes_the_order(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    lid, settings = setup["id"], get_settings()
    confirmed = [(await apply(client, lid))["reference"] for _ in range(8)]
    unconfirmed = (await apply(client, lid, confirm=False))["reference"]
    await close_window(lid)
    now = datetime.now(UTC)
    # Two workers at once: one draws, the other finds nothing to do.
    results = await asyncio.gather(
        lottery.draw(lid, now, settings), lottery.draw(lid, now, settings)
    )
    assert sorted(r is None for r in results) == [False, True]
    won = await LotteryApplication.select().where(LotteryApplication.status == "won")
    assert len(won) == DAY_CAP
    appointments = await Appointment.select()
    assert len(appointments) == DAY_CAP
    assert {a["status"] for a in appointments} == {"pending_confirmation"}
    assert await seats_taken(setup["office_id"], setup["day"]) == (DAY_CAP, DAY_CAP)
    texts = await OutboxMessage.select(OutboxMessage.to_phone).where(
        OutboxMessage.template == "lottery_won"
    )
    assert len(texts) == 2 * DAY_CAP and len({t["to_phone"] for t in texts}) == 2 * DAY_CAP
    assert await Party.count().where(Party.appointment.is_not_null()) == 2 * DAY_CAP
    statuses = {r["reference"]: r["status"] for r in await LotteryApplication.select()}
    assert statuses[unconfirmed] == "unconfirmed"
    assert sorted(s for r, s in statuses.items() if r in confirmed) == ["waiting"] * 3 + ["won"] * 5
    # Published: the seed (matching the hash published before) and the order,
    # which anyone re-computes from the seed and the confirmed references.
    public = (await client.get(f"/api/v1/lotteries/{lid}")).json()
    assert hashlib.sha256(public["seed"].encode()).hexdigest() == public["seed_sha256"]
    assert public["draw_order"] == draw_order(public["seed"], confirmed)
    assert {w["reference"] for w in won} == set(public["draw_order"][:DAY_CAP])
    # The winners' view links to their appointment, managed with the same token.
    first = public["draw_order"][0]
    # Re-running the job changes nothing.
    before = (await Appointment.count(), await OutboxMessage.count())
    assert await lottery.tick(datetime.now(UTC), settings) == {}
    assert (await Appointment.count(), await OutboxMessage.count()) == before
    assert first in confirmed


async def test_lapsed_winners_seats_go_to_the_next_in_draw_order(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    lid, settings = setup["id"], get_settings()
    couples = {}
    for _ in range(8):
        body = await apply(client, lid)
        couples[body["reference"]] = body["manage_token"]
    await close_window(lid)
    now = datetime.now(UTC)
    assert (await lottery.tick(now, settings))["won"] == DAY_CAP
    order = (await client.get(f"/api/v1/lotteries/{lid}")).json()["draw_order"]
    # The first winner confirms (as any booking, codes from the win SMS); the rest do not.
    ref = order[0]
    view = await client.get(
        f"/api/v1/lotteries/{lid}/applications/{ref}", headers={"X-Manage-Token": couples[ref]}
    )
    appt = view.json()["appointment"]
    assert view.json()["status"] == "won" and appt["status"] == "pending_confirmation"
    wins = await (
        OutboxMessage.select(OutboxMessage.key, OutboxMessage.payload)
        .where(OutboxMessage.template == "lottery_won")
        .output(load_json=True)
    )
    for row in wins:
        if row["payload"]["reference"] == appt["reference"]:
            party = row["key"].rsplit(":", 1)[1]
            resp = await client.post(
                f"/api/v1/appointments/{appt['reference']}/confirm",
                json={"party": party, "code": row["payload"]["code"]},
            )
            assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "confirmed"
    # While someone waits in draw order, freed seats of the date are the lottery's,
    # not the waiting list's; once the order is exhausted, they are no longer.
    day, office_id = setup["day"], setup["office_id"]
    slots = {
        s["id"]
        for s in await Slot.select(Slot.id).where((Slot.office == office_id) & (Slot.day == day))
    }
    assert await lottery_days.reserved_slots(office_id, "marriage", day, now) == slots
    # The deadline passes: holds are released, the next tick passes the seats on.
    later = now + timedelta(hours=13)
    assert await booking.expire_holds(later, settings=get_settings()) == DAY_CAP - 1
    result = await lottery.tick(later, settings)
    assert result["lapsed"] == DAY_CAP - 1 and result["won"] == 3  # everyone left in order
    statuses = {r["reference"]: r["status"] for r in await LotteryApplication.select()}
    assert [statuses[r] for r in order] == ["won"] + ["lapsed"] * 4 + ["won"] * 3
    assert await seats_taken(setup["office_id"], setup["day"]) == (4, 4)
    assert await lottery_days.reserved_slots(office_id, "marriage", day, later) == frozenset()
    again = await lottery.tick(later, settings)
    assert again.get("won", 0) == 0 and again.get("lapsed", 0) == 0


async def test_retention_erases_applicants_personal_data_and_keeps_the_draw(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    from scheduler.db.lottery_tables import LotteryClaim
    from scheduler.usecases.privacy import retention

    lid, settings = setup["id"], get_settings()
    a = person()
    await apply(client, lid, a=a)
    await close_window(lid)
    await lottery.tick(datetime.now(UTC), settings)
    # Not yet past retention: nothing erased.
    assert await retention.erase_expired(datetime.now(UTC), settings) == 0
    assert "lottery" in retention.SCHEDULED_ERASERS
    later = datetime.now(UTC) + timedelta(days=settings.retention_days + 30)
    assert await retention.erase_expired(later, settings) >= 2
    parties = await Party.select().where(Party.application.is_not_null())
    assert len(parties) == 2
    assert {(p["name"], p["phone"], p["id_sealed"], p["id_hash"]) for p in parties} == {
        ("", "", "", "")
    }
    assert await LotteryClaim.count() == 0
    assert a["name"] not in str(await Party.select())  # the appointment's parties too
    public = (await client.get(f"/api/v1/lotteries/{lid}")).json()
    assert len(public["draw_order"]) == 1 and public["seed"]
    assert await retention.erase_expired(later, settings) == 0


async def test_an_id_holding_a_marriage_appointment_cannot_win(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    """One active marriage appointment per ID holds in the draw too: the couple is
    skipped (ineligible) and the seat goes to the next in order."""
    lid, settings = setup["id"], get_settings()
    booked = person()
    other_day = (
        await Slot.select(Slot.id)
        .where(
            (Slot.office == setup["office_id"])
            & (Slot.day != setup["day"])
            # A slot not yet past, whatever the hour the suite runs at.
            & (Slot.start_at > datetime.now(UTC) + timedelta(days=1))
        )
        .order_by(Slot.start_at)
        .first()
    )
    resp = await client.post("/api/v1/appointments", json=booking_body(other_day["id"], a=booked))
    assert resp.status_code == 201, resp.text
    blocked = (await apply(client, lid, a=booked))["reference"]
    free = (await apply(client, lid))["reference"]
    await close_window(lid)
    assert (await lottery.tick(datetime.now(UTC), settings))["won"] == 1
    statuses = {r["reference"]: r["status"] for r in await LotteryApplication.select()}
    assert statuses == {blocked: "ineligible", free: "won"}
    assert await Appointment.count() == 2


async def test_racing_applications_naming_one_person_make_one(
    client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    shared = person()
    url = f"/api/v1/lotteries/{setup['id']}/applications"
    bodies = [application(a=shared), application(b=shared), application(a=shared)]
    answers = await asyncio.gather(*(client.post(url, json=b) for b in bodies))
    assert sorted(r.status_code for r in answers) == [201, 409, 409]
    assert await LotteryApplication.count() == 1
    assert await OutboxMessage.count() == 2  # the one application's two codes


async def test_per_id_limit_refuses_a_lottery_application_across_addresses(
    setup: dict[str, Any],
) -> None:
    """Applying texts two codes, so it counts against each party's ID as a hold or a
    waiting-list entry does, whichever address it comes from."""
    from tests.test_ratelimits import app_with, client_at, fresh_window, slug

    await fresh_window(3600, 5)
    app = app_with(rate_limit_sms_per_minute=0, rate_limit_id_per_hour=2)
    same = person()
    url = f"/api/v1/lotteries/{setup['id']}/applications"
    answers = []
    for n in range(3):
        async with client_at(app, f"198.51.100.{n + 50}") as c:
            resp = await c.post(url, json=application(a=same))
            answers.append(resp)
            if resp.status_code == 201:  # withdrawn: the ID may apply again
                gone = await c.post(
                    f"{url}/{resp.json()['reference']}/withdraw",
                    headers={"X-Manage-Token": resp.json()["manage_token"]},
                )
                assert gone.status_code == 200, gone.text
    assert [r.status_code for r in answers] == [201, 201, 429], answers[-1].text
    assert slug(answers[-1]) == "rate-limited"
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert await LotteryApplication.count() == 2  # the refused one left nothing behind
    assert await OutboxMessage.count() == 4


async def test_the_draw_on_a_day_the_slot_caps_keep_takes_no_day_row(
    client: httpx.AsyncClient, db: None
) -> None:
    """Issue 16: where the slot caps keep the day cap (14 slots of 1, a day of 1,000),
    the winners take their slot rows only, the slot caps bound them, and the day's
    count is the sum over its slots."""
    from tests.support.day_counters import check_days

    office_id = await make_office(code="GZ-TH", slot_cap=1, day_cap=1000, days_ahead=DAYS)
    admin = await staff_token(client, "lot.admin", role="admin", offices=("GZ-TH",))
    day = await lottery_day(office_id)
    resp = await client.post("/api/v1/admin/lotteries", json=new_lottery(day), headers=admin)
    assert resp.status_code == 201, resp.text
    lid = resp.json()["id"]
    await Lottery.update({Lottery.opens_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        Lottery.id == lid
    )
    slots = await Slot.select(Slot.day_covered).where(
        (Slot.office == office_id) & (Slot.day == day)
    )
    assert {bool(s["day_covered"]) for s in slots} == {True}
    for _ in range(len(slots) + 2):
        await apply(client, lid)
    await close_window(lid)
    assert await lottery.draw(lid, datetime.now(UTC), get_settings())
    won = await LotteryApplication.count().where(LotteryApplication.status == "won")
    assert won == len(slots)
    assert await seats_taken(office_id, day) == (len(slots), 0)  # the day row not taken
    await check_days()
