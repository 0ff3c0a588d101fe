"""The retention job erases exactly the personal data of appointments more than
RETENTION_DAYS past their (office-local) day, and nothing else: every column of
every table is compared before and after, on both databases."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from piccolo.columns import JSON

from tests.helpers import booking_body, make_office, open_slots, sms_codes, staff_token

TZ = ZoneInfo("Asia/Shanghai")
PERSONAL_PARTY = ("name", "phone", "id_sealed", "id_masked", "id_hash")
PRECHECK_PARTY = {
    "nationality": "CN",
    "occupation": "教师",
    "education": "bachelor",
    "marital_status": "divorced",
    "hukou_address": "广东省广州市天河区体育西路 1 号",
    "documents": ["id_card", "photos", "declaration"],
}
PRECHECK_ERASED = ("occupation", "education", "marital_status", "hukou_address")
BLANK_MESSAGE = {"to_phone": "", "body": "", "payload": {}, "error_text": None}


async def snapshot() -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every table of the app, by primary key; JSON decoded."""
    from scheduler.db.piccolo_app import APP_CONFIG

    tables: dict[str, dict[Any, dict[str, Any]]] = {}
    for table in APP_CONFIG.table_classes:
        pk = table._meta.primary_key._meta.name
        json_cols = {c._meta.name for c in table._meta.columns if isinstance(c, JSON)}
        rows = {}
        for row in await table.select():
            for col in json_cols:
                if isinstance(row[col], str):
                    row[col] = json.loads(row[col])
            rows[row[pk]] = row
        tables[table._meta.tablename] = rows
    return tables


async def _book(client: httpx.AsyncClient, slot: dict[str, Any], *, confirm: bool) -> str:
    held = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    assert held.status_code == 201, held.text
    reference = held.json()["reference"]
    if confirm:
        codes = await sms_codes(reference)
        for role in ("a", "b"):
            resp = await client.post(
                f"/api/v1/appointments/{reference}/confirm",
                json={"party": role, "code": codes[role]},
            )
            assert resp.status_code == 200, resp.text
        # Pre-check answers (issue 4.7): personal, free text included.
        precheck = await client.put(
            f"/api/v1/appointments/{reference}/precheck",
            json={"party_a": PRECHECK_PARTY, "party_b": PRECHECK_PARTY | {"nationality": "FR"}},
            headers={"X-Manage-Token": held.json()["manage_token"]},
        )
        assert precheck.status_code == 200, precheck.text
    return reference


async def _scenario(client: httpx.AsyncClient) -> dict[str, Any]:
    """Six appointments on five days (two on the boundary day), in every state the
    job may meet; a reveal (audit row), a failed SMS with the number in its error
    text, and two outbox messages tied to no appointment (one old, one recent)."""
    from scheduler.db.tables import Appointment, OutboxMessage, Slot

    await make_office()
    slots = await open_slots(client)
    day_of = {r["id"]: r["day"].isoformat() for r in await Slot.select(Slot.id, Slot.day)}
    first_of_day: dict[str, dict[str, Any]] = {}
    for slot in slots:
        first_of_day.setdefault(day_of[slot["id"]], slot)
    days = sorted(first_of_day)[:5]
    assert len(days) == 5
    refs = {
        "old_confirmed": await _book(client, first_of_day[days[0]], confirm=True),
        "old_pending": await _book(client, first_of_day[days[1]], confirm=False),
        "boundary": await _book(client, first_of_day[days[2]], confirm=True),
        "boundary_pending": await _book(client, first_of_day[days[2]], confirm=False),
        "newer": await _book(client, first_of_day[days[3]], confirm=True),
        "newest": await _book(client, first_of_day[days[4]], confirm=False),
    }
    clerk = await staff_token(client, "clerk.ret")
    for ref in (refs["old_confirmed"], refs["boundary"]):
        resp = await client.post(f"/api/v1/offices/GZ-TH/appointments/{ref}/reveal", headers=clerk)
        assert resp.status_code == 200
        review = await client.post(
            f"/api/v1/offices/GZ-TH/prechecks/{ref}/review",
            json={"decision": "needs_correction", "note": "王先生请带户口簿原件", "version": 1},
            headers=clerk,
        )
        assert review.status_code == 200, review.text
    failed = refs["old_confirmed"]
    rows = await Appointment.select(Appointment.id, Appointment.reference)
    ids = {r["reference"]: r["id"] for r in rows}
    await OutboxMessage.update(
        {OutboxMessage.status: "failed", OutboxMessage.error_code: "21211"}
    ).where(OutboxMessage.appointment_id == ids[failed])
    for appointment in (ids[failed], ids[refs["newer"]]):
        msg = (
            await OutboxMessage.select(OutboxMessage.id, OutboxMessage.to_phone)
            .where(OutboxMessage.appointment_id == appointment)
            .first()
        )
        assert msg is not None
        await OutboxMessage.update(
            {OutboxMessage.error_text: f"The 'To' number {msg['to_phone']} is not valid"}
        ).where(OutboxMessage.id == msg["id"])
    boundary_day = date.fromisoformat(days[2])
    return {"refs": refs, "ids": ids, "days": days, "boundary_day": boundary_day}


async def _unlinked_messages(now: datetime, retention_days: int) -> dict[str, int]:
    from scheduler.db.tables import OutboxMessage

    made = {}
    for name, age in (("old", retention_days + 1), ("recent", retention_days - 1)):
        rows = await OutboxMessage.insert(
            OutboxMessage(
                key=f"test:unlinked:{name}",
                to_phone="+8613800009999",
                template="code",
                locale="zh-Hans",
                payload={"code": "123456", "reference": "X"},
                body="【婚姻登记】验证码 123456",
                status="delivered",
                created_at=now - timedelta(days=age),
                due_at=now - timedelta(days=age),
            )
        ).returning(OutboxMessage.id)
        made[name] = rows[0]["id"]
    return made


def _expected(
    before: dict[str, dict[Any, dict[str, Any]]],
    erased: set[int],
    unlinked: set[int],
    now: datetime,
) -> dict[str, dict[Any, dict[str, Any]]]:
    """``before`` with exactly the erasure applied, computed from the rule itself."""
    after = _comparable(before)  # a deep copy
    for pk, row in after["appointment"].items():
        if int(pk) in erased:
            row["erased_at"] = _plain(now)
    for row in after["party"].values():
        if row["appointment"] in erased:
            row.update(dict.fromkeys(PERSONAL_PARTY, ""))
    after["id_claim"] = {
        pk: row for pk, row in after["id_claim"].items() if row["appointment"] not in erased
    }
    prechecks = set()
    for pk, row in after["precheck"].items():
        if row["appointment"] in erased:
            row["note"] = ""
            prechecks.add(int(pk))
    for row in after["precheck_party"].values():
        if row["precheck"] in prechecks:
            row.update(dict.fromkeys(PRECHECK_ERASED, ""))
    for pk, row in after["outbox_message"].items():
        if row["appointment_id"] in erased or int(pk) in unlinked:
            row.update(BLANK_MESSAGE)
    return after


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _comparable(state: dict[str, dict[Any, dict[str, Any]]]) -> Any:
    return json.loads(json.dumps(state, default=_plain))


async def test_erases_exactly_what_is_past_retention(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.settings import get_settings
    from scheduler.usecases.privacy.retention import erase_expired

    settings = get_settings()
    r = settings.retention_days
    setup = await _scenario(client)
    # Noon, office time, exactly `r` days after the boundary day: the boundary is kept.
    now = datetime.combine(setup["boundary_day"] + timedelta(days=r), time(12), TZ)
    unlinked = await _unlinked_messages(now, r)
    before = await snapshot()
    assert before["id_claim"], "held and confirmed marriages hold ID claims"
    assert len(before["precheck"]) == 3 and len(before["precheck_party"]) == 6
    ids, refs = setup["ids"], setup["refs"]
    old = {ids[refs["old_confirmed"]], ids[refs["old_pending"]]}

    assert await erase_expired(now, settings) == len(old) + 1  # + the old unlinked message
    after = await snapshot()
    assert _comparable(after) == _expected(before, old, {unlinked["old"]}, now)
    # Statistics survive: statuses, slots, services, events, ID types, SMS outcomes.
    erased_parties = [p for p in after["party"].values() if p["appointment"] in old]
    assert len(erased_parties) == 4 and {p["id_type"] for p in erased_parties} == {"mainland_id"}
    assert {after["appointment"][i]["status"] for i in old} == {
        "confirmed",
        "pending_confirmation",
    }

    # A second run changes nothing.
    assert await erase_expired(now, settings) == 0
    assert _comparable(await snapshot()) == _comparable(after)

    # From the office's next midnight the boundary day is past retention too.
    midnight = datetime.combine(setup["boundary_day"] + timedelta(days=r + 1), time(0), TZ)
    boundary = {ids[refs["boundary"]], ids[refs["boundary_pending"]]}
    assert await erase_expired(midnight, settings) == len(boundary)
    assert _comparable(await snapshot()) == _expected(after, boundary, set(), midnight)


async def test_concurrent_runs_erase_each_appointment_once(client: httpx.AsyncClient) -> None:
    """Two runs at once (separate connections: real overlap on PostgreSQL), in batches
    of one: every appointment is claimed by exactly one of them."""
    from scheduler.settings import get_settings
    from scheduler.usecases.privacy.retention import erase_expired

    settings = get_settings()
    setup = await _scenario(client)
    now = datetime.combine(
        date.fromisoformat(setup["days"][4]) + timedelta(days=settings.retention_days + 1),
        time(9),
        TZ,
    )
    before = await snapshot()
    counts = await asyncio.gather(*(erase_expired(now, settings, batch=1) for _ in range(3)))
    assert sum(counts) == len(setup["ids"])
    assert _comparable(await snapshot()) == _expected(
        before, set(setup["ids"].values()), set(), now
    )


async def test_erased_appointment_reads_without_personal_data(client: httpx.AsyncClient) -> None:
    """Lists and reveals of an erased appointment show nothing personal and do not fail."""
    from scheduler.settings import get_settings
    from scheduler.usecases.privacy.retention import erase_expired

    settings = get_settings()
    setup = await _scenario(client)
    ref = setup["refs"]["old_confirmed"]
    day = setup["days"][0]
    now = datetime.combine(
        date.fromisoformat(day) + timedelta(days=settings.retention_days + 1), time(9), TZ
    )
    await erase_expired(now, settings)
    clerk = await staff_token(client, "clerk.after")
    listed = await client.get(
        "/api/v1/offices/GZ-TH/appointments", params={"date": day}, headers=clerk
    )
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["reference"] == ref and row["status"] == "confirmed"
    assert {(p["name"], p["id_number_masked"], p["phone_masked"]) for p in row["parties"]} == {
        ("", "", "")
    }
    revealed = await client.post(f"/api/v1/offices/GZ-TH/appointments/{ref}/reveal", headers=clerk)
    assert revealed.status_code == 200
    assert {(p["id_number"], p["phone"]) for p in revealed.json()["parties"]} == {("", "")}


async def test_registered_erasers_run_with_their_batch(client: httpx.AsyncClient) -> None:
    from scheduler.settings import get_settings
    from scheduler.usecases.privacy import retention

    settings = get_settings()
    setup = await _scenario(client)
    seen: list[list[int]] = []
    swept: list[datetime] = []

    async def eraser(ids: list[int], now: datetime) -> None:
        seen.append(sorted(ids))

    async def sweeper(now: datetime, _settings: Any) -> int:
        swept.append(now)
        return 7

    retention.erase_with_appointments("test")(eraser)
    retention.erase_on_schedule("test")(sweeper)
    try:
        now = datetime.combine(
            setup["boundary_day"] + timedelta(days=settings.retention_days), time(12), TZ
        )
        ids, refs = setup["ids"], setup["refs"]
        assert await retention.erase_expired(now, settings) == 2 + 7
        assert seen == [sorted([ids[refs["old_confirmed"]], ids[refs["old_pending"]]])]
        assert swept == [now]
        await retention.erase_expired(now, settings)
        assert len(seen) == 1  # nothing left to erase: the hook is not called again
    finally:
        retention.APPOINTMENT_ERASERS.pop("test")
        retention.SCHEDULED_ERASERS.pop("test")


@pytest.mark.parametrize("raw", ["0", "29", "3651", "half a year"])
def test_retention_days_is_validated(raw: str) -> None:
    from scheduler.settings import SettingsError, parse_settings

    with pytest.raises(SettingsError, match="RETENTION_DAYS"):
        parse_settings({"SECRET_KEY": "a-test-secret-key-long-enough", "RETENTION_DAYS": raw})
    assert (
        parse_settings({"SECRET_KEY": "a-test-secret-key-long-enough", "RETENTION_DAYS": "30"})
    ).retention_days == 30


def test_first_kept_day_is_office_local() -> None:
    from scheduler.domain.retention import first_kept_day, is_past_retention

    # 16:30 UTC on 30 June is already 1 July in Shanghai, still 30 June in London.
    now = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)
    assert first_kept_day(now, TZ, 180) == date(2026, 7, 1) - timedelta(days=180)
    assert first_kept_day(now, ZoneInfo("Europe/London"), 180) == date(2026, 1, 1)
    assert is_past_retention(date(2025, 12, 31), now, ZoneInfo("Europe/London"), 180)
    assert not is_past_retention(date(2026, 1, 1), now, ZoneInfo("Europe/London"), 180)
