"""Issue 14, items 1-2 through the API: a declaration over several offices needs the
token of its own preview (so a script cannot close offices nobody previewed), and the
preview's placements are exactly the ones the run then applies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from scheduler.db.audit import NamedActor
from scheduler.db.blackout_tables import Blackout, RescheduleItem
from scheduler.db.tables import Appointment, Office, Slot
from scheduler.kernel.errors import DomainError
from scheduler.settings import get_settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.offices import blackouts, reschedule
from tests.helpers import make_office, person, staff_token

PROBLEM = "application/problem+json"


async def _hold(office: str, day: date, count: int) -> None:
    """``count`` holds on the first slots of ``day`` (four per slot, so slots fill)."""
    slots = (
        await Slot.select()
        .where((Slot.office.code == office) & (Slot.day == day) & (Slot.service == "marriage"))
        .order_by(Slot.start_at)
    )
    for i in range(count):
        await booking.hold(
            booking.BookingInput(
                slot_id=slots[(i // 4) % len(slots)]["id"],
                service="marriage",
                party_a=booking.PartyInput(**person()),
                party_b=booking.PartyInput(**person()),
            ),
            now=datetime.now(UTC),
            settings=get_settings(),
        )


def _closing(day: date, offices: list[str] | str, **extra: Any) -> dict[str, Any]:
    return {
        "offices": offices,
        "start_date": day.isoformat(),
        "end_date": day.isoformat(),
        "kind": "closed",
        "reason": {"zh-Hans": "停电检修", "en": "Power maintenance"},
    } | extra


async def _two_offices(client: httpx.AsyncClient) -> dict[str, str]:
    # Tight caps: the couples of a closed day spread over several other days.
    for code in ("GZ-TH", "SZ-FT"):
        await make_office(code=code, slot_cap=4, day_cap=20, onsite_cap=1000, days_ahead=8)
    return await staff_token(client, "root", role="superadmin", offices=())


async def test_several_offices_need_the_preview_token(client: httpx.AsyncClient) -> None:
    root = await _two_offices(client)
    day = date.today() + timedelta(days=3)
    both = _closing(day, ["GZ-TH", "SZ-FT"])

    refused = await client.post("/api/v1/admin/blackouts", json=both, headers=root)
    assert refused.status_code == 428, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["type"].endswith("preview-required")
    assert "{" not in refused.json()["title"] + refused.json()["detail"]
    everywhere = await client.post(
        "/api/v1/admin/blackouts", json=_closing(day, "all"), headers=root
    )
    assert everywhere.status_code == 428
    assert await Blackout.count() == 0

    preview = await client.post(
        "/api/v1/admin/blackouts", json=both | {"dry_run": True}, headers=root
    )
    assert preview.status_code == 200, preview.text
    token = preview.json()["preview_token"]
    assert token and preview.json()["preview"]["offices"] == ["GZ-TH", "SZ-FT"]

    # The token fits only what was previewed: another day, kind, scope or reason is 409.
    for other in (
        _closing(day + timedelta(days=1), ["GZ-TH", "SZ-FT"]),
        both | {"kind": "no_new_bookings"},
        _closing(day, "all") | {"reason": {"zh-Hans": "别的原因"}},
        both | {"reason": {"zh-Hans": "停电检修"}},
    ):
        wrong = await client.post(
            "/api/v1/admin/blackouts", json=other | {"preview_token": token}, headers=root
        )
        assert wrong.status_code == 409, (other, wrong.text)
        assert wrong.json()["type"].endswith("preview-mismatch")
    forged = await client.post(
        "/api/v1/admin/blackouts", json=both | {"preview_token": "9999999999.abc"}, headers=root
    )
    assert forged.status_code == 409
    assert await Blackout.count() == 0

    declared = await client.post(
        "/api/v1/admin/blackouts", json=both | {"preview_token": token}, headers=root
    )
    assert declared.status_code == 202, declared.text
    assert declared.json()["blackout"]["offices"] == ["GZ-TH", "SZ-FT"]
    assert declared.json()["run"]["status"] == "pending"

    # One office needs no token: a script closing its own office keeps working.
    one = await client.post(
        "/api/v1/admin/blackouts", json=_closing(day + timedelta(days=2), ["GZ-TH"]), headers=root
    )
    assert one.status_code == 202, one.text


async def test_a_token_is_personal_and_expires(client: httpx.AsyncClient) -> None:
    await _two_offices(client)
    day = date.today() + timedelta(days=3)
    decl = blackouts.Declaration(
        kind="closed",
        start_date=day,
        end_date=day,
        offices=["GZ-TH", "SZ-FT"],
        reason={"zh-Hans": "停电检修"},
    )
    now = datetime.now(UTC)
    dry = await blackouts.declare(
        decl, now=now, actor=NamedActor("root"), scope=None, dry_run=True, settings=get_settings()
    )
    token = dry["preview_token"]
    for actor, when, slug in (
        ("someone.else", now, "preview-mismatch"),
        ("root", now + blackouts.PREVIEW_TOKEN_TTL + timedelta(seconds=1), "preview-expired"),
    ):
        try:
            await blackouts.declare(
                decl,
                now=when,
                actor=NamedActor(actor),
                scope=None,
                dry_run=False,
                preview_token=token,
                preview_required_over=1,
                settings=get_settings(),
            )
        except DomainError as exc:
            assert exc.slug == slug
        else:
            raise AssertionError(f"{actor} at {when} declared with the token")
    assert await Blackout.count() == 0


async def _run_placements(run_id: int) -> dict[str, tuple[str | None, str | None, str | None]]:
    """reference -> (office, date, local time) the run put the couple on (None: no seat)."""
    items = await RescheduleItem.select().where(RescheduleItem.run == run_id)
    refs = {
        a["id"]: a["reference"]
        for a in await Appointment.select(Appointment.id, Appointment.reference)
    }
    offices = {o["id"]: o for o in await Office.select()}
    slots = {s["id"]: s for s in await Slot.select()}
    out: dict[str, tuple[str | None, str | None, str | None]] = {}
    for item in items:
        slot = slots.get(item["to_slot"])
        if slot is None:
            out[refs[item["appointment"]]] = (None, None, None)
            continue
        office = offices[slot["office"]]
        local = slot["start_at"].astimezone(ZoneInfo(office["timezone"]))
        out[refs[item["appointment"]]] = (office["code"], slot["day"].isoformat(), f"{local:%H:%M}")
    return out


async def test_preview_placements_are_the_runs_placements(client: httpx.AsyncClient) -> None:
    root = await _two_offices(client)
    day = date.today() + timedelta(days=3)
    await _hold("GZ-TH", day, 18)
    await _hold("SZ-FT", day, 18)
    # The neighbours fill up too: couples spill over several days (and some stay unplaced
    # only if everything is full; here the window has room).
    await _hold("GZ-TH", day + timedelta(days=1), 15)
    body = _closing(day, ["GZ-TH", "SZ-FT"])
    dry = await client.post("/api/v1/admin/blackouts", json=body | {"dry_run": True}, headers=root)
    assert dry.status_code == 200, dry.text
    preview = dry.json()["preview"]
    assert preview["affected"] == 36
    shown = {
        p["reference"]: (p["to_office"], p["to_date"], p["to_time"]) for p in preview["placements"]
    }
    assert len(shown) == 36
    # By reference and local time only: no internal ids in what the admin reads.
    assert all(
        set(p)
        == {"reference", "from_office", "from_date", "from_time", "to_office", "to_date", "to_time"}
        for p in preview["placements"]
    )
    # Nobody is "moved" into the day being closed.
    assert all(d != day.isoformat() for _, d, _ in shown.values())
    assert len({d for _, d, _ in shown.values()}) >= 2

    token = dry.json()["preview_token"]
    declared = await client.post(
        "/api/v1/admin/blackouts", json=body | {"preview_token": token}, headers=root
    )
    assert declared.status_code == 202, declared.text
    run_id = declared.json()["run"]["id"]
    assert await reschedule.execute(
        run_id, "test", datetime.now(UTC), batch=7, settings=get_settings()
    )
    assert await _run_placements(run_id) == shown
