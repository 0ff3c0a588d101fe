"""Test data helpers: offices with slots, valid people, codes from the outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

WEEKDAYS_9_TO_5 = {str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(7)}


async def make_office(
    *,
    code: str = "GZ-TH",
    slot_cap: int = 10,
    day_cap: int = 1000,
    onsite_cap: int = 1000,
    slot_minutes: int = 30,
    services: tuple[str, ...] = ("marriage",),
    weekly_hours: dict[str, list[list[str]]] | None = None,
    days_ahead: int = 30,
    hold_minutes: int = 15,
    designated: bool = False,
) -> int:
    """An office open every day (holidays aside) with generated slots. ``designated``:
    may serve parties from Hong Kong, Macau, Taiwan and abroad (config/rules/)."""
    from scheduler.db.tables import Office, OfficeService
    from scheduler.usecases.calendar.slots import generate_slots

    rows = await Office.insert(
        Office(
            code=code,
            name_zh=f"{code} 婚姻登记处",
            name_en=f"{code} Marriage Registry",
            address_zh="测试路 1 号",
            address_en="1 Test Road",
            region="test",
            day_cap=day_cap,
            onsite_cap=onsite_cap,
            booking_days_ahead=days_ahead,
            hold_minutes=hold_minutes,
            designated=designated,
        )
    ).returning(Office.id)
    office_id = int(rows[0]["id"])
    for service in services:
        await OfficeService.insert(
            OfficeService(
                office=office_id,
                service=service,
                slot_minutes=slot_minutes,
                slot_cap=slot_cap,
                weekly_hours=weekly_hours or WEEKDAYS_9_TO_5,
            )
        )
    await generate_slots(datetime.now(UTC))
    return office_id


async def open_slots(
    client: httpx.AsyncClient, office: str = "GZ-TH", service: str = "marriage"
) -> list[dict[str, Any]]:
    """Bookable slots of the office, soonest first (starting tomorrow, so never 'past')."""
    tomorrow = date.today() + timedelta(days=2)
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={
            "service": service,
            "from": tomorrow.isoformat(),
            "to": (tomorrow + timedelta(days=20)).isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    return [s for d in resp.json()["days"] if d["status"] == "open" for s in d["slots"]]


_seq = iter(range(10_000_000))


def person(n: int | None = None, *, phone_region: str = "138") -> dict[str, str]:
    """A party with a valid, unique mainland ID number and mobile."""
    from scheduler.domain.identity import make_mainland_id

    n = next(_seq) if n is None else n
    prefix = f"440106199001{(n // 1000) % 28 + 1:02d}{n % 1000:03d}"
    return {
        "name": f"测试{n}",
        "id_type": "mainland_id",
        "id_number": make_mainland_id(prefix),
        "phone": f"+86{phone_region}{n % 100_000_000:08d}",
    }


def booking_body(
    slot_id: int, *, a: dict[str, str] | None = None, b: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "slot_id": slot_id,
        "service": "marriage",
        "party_a": a or person(),
        "party_b": b or person(),
        "locale": "zh-Hans",
    } | extra


async def sms_codes(reference: str) -> dict[str, str]:
    """The codes texted to each party, read from the outbox (what their phones got)."""
    from scheduler.db.tables import OutboxMessage

    rows = (
        await OutboxMessage.select(OutboxMessage.key, OutboxMessage.payload)
        .where(OutboxMessage.template == "code")
        .output(load_json=True)
    )
    codes = {}
    for row in rows:
        if row["payload"]["reference"] == reference:
            codes[row["key"].rsplit(":", 1)[1]] = row["payload"]["code"]
    return codes


async def gather(*aws: Any) -> list[Any]:
    return list(await asyncio.gather(*aws))


async def staff_token(
    client: httpx.AsyncClient,
    username: str,
    role: str = "clerk",
    offices: tuple[str, ...] = ("GZ-TH",),
) -> dict[str, str]:
    """A staff account and the Authorization header of its bearer token."""
    from scheduler.usecases.staff.accounts import create_staff

    password = f"{username}-long-password"
    await create_staff(
        username=username,
        password=password,
        role=role,
        office_codes=list(offices),
        now=datetime.now(UTC),
    )
    resp = await client.post(
        "/api/v1/staff/login", json={"username": username, "password": password}
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}
