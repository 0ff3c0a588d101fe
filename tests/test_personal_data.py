"""ID numbers at rest: never in plaintext in the database, revealed (audited) to a
clerk, found by their keyed hash; key rotation with ``reseal``; the migration that
seals rows stored before. Both databases."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.db.audit import entries
from tests.helpers import booking_body, make_office, open_slots, person, staff_token

ROOT = Path(__file__).resolve().parent.parent
PASSPORT = {"name": "Anna Example", "id_type": "passport", "id_number": "E12345678"}


async def _all_rows_text() -> str:
    """Every value of every row of every table, read with raw SQL."""
    from scheduler.db.piccolo_app import APP_CONFIG

    chunks = []
    for table in APP_CONFIG.table_classes:
        rows = await table.raw(f"SELECT * FROM {table._meta.tablename}")  # noqa: S608
        chunks.append(repr(rows))
    return "\n".join(chunks)


async def _python(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """A command line run in a thread, with the session's environment plus ``env``."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *args],
        env=os.environ | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def _book(client: httpx.AsyncClient, slot_id: int, **parties: Any) -> httpx.Response:
    return await client.post("/api/v1/appointments", json=booking_body(slot_id, **parties))


async def test_id_numbers_are_never_stored_in_plaintext(client: httpx.AsyncClient) -> None:
    from scheduler.db.tables import Party

    await make_office(designated=True)  # a passport holder needs a designated office
    slot = (await open_slots(client))[0]
    a, b = person(), person(phone_region="139") | PASSPORT
    # With an Idempotency-Key: the stored response must not hold the numbers either.
    held = await client.post(
        "/api/v1/appointments",
        json=booking_body(slot["id"], a=a, b=b),
        headers={"Idempotency-Key": "pd-test-0001"},
    )
    assert held.status_code == 201, held.text
    text = await _all_rows_text()
    assert "pd-test-0001" in text  # the scan does see the idempotency record
    for number in (a["id_number"], b["id_number"]):
        assert number not in text
    assert "12345678" not in text  # not even the passport's digits
    parties = await Party.raw("SELECT * FROM party ORDER BY role")
    assert "id_number" not in parties[0]  # the plaintext column is gone
    assert [p["id_masked"] for p in parties] == [
        "440***********" + a["id_number"][-4:],
        "*******78",
    ]
    assert all(p["id_sealed"].startswith("v1.") and p["id_hash"] for p in parties)
    # What the couple sees is masked the same way.
    assert [p["id_number_masked"] for p in held.json()["parties"]] == [
        p["id_masked"] for p in parties
    ]


async def test_reveal_search_and_one_marriage_per_id(client: httpx.AsyncClient) -> None:
    await make_office(designated=True)  # a passport holder needs a designated office
    slots = await open_slots(client)
    a, b = person(), person(phone_region="139") | PASSPORT
    held = (await _book(client, slots[0]["id"], a=a, b=b)).json()
    clerk = await staff_token(client, "clerk.pd")
    revealed = await client.post(
        f"/api/v1/offices/GZ-TH/appointments/{held['reference']}/reveal", headers=clerk
    )
    assert revealed.status_code == 200
    assert [(p["id_type"], p["id_number"], p["phone"]) for p in revealed.json()["parties"]] == [
        ("mainland_id", a["id_number"], a["phone"]),
        ("passport", "E12345678", b["phone"]),
    ]
    audit = await entries("appointment", held["reference"])
    assert [(e["action"], e["actor_name"]) for e in audit] == [("appointment.reveal", "clerk.pd")]
    for query in (a["id_number"], "e12345678"):  # typed as a clerk would, lower case too
        found = await client.get(
            "/api/v1/offices/GZ-TH/appointments",
            params={"date": held["slot"]["date"], "q": query},
            headers=clerk,
        )
        assert [x["reference"] for x in found.json()] == [held["reference"]], query
    # The same person may not hold a second active marriage appointment.
    again = await _book(client, slots[1]["id"], a=person(), b=b)
    assert again.status_code == 409 and again.json()["type"].endswith("/already-booked")


@pytest.fixture
async def booked(client: httpx.AsyncClient) -> AsyncIterator[list[dict[str, str]]]:
    """Three couples booked with the current (derived) key; their people."""
    await make_office()
    slots = await open_slots(client)
    people = []
    for n in range(3):
        a, b = person(), person(phone_region="139")
        assert (await _book(client, slots[n]["id"], a=a, b=b)).status_code == 201
        people += [a, b]
    yield people


def _keys(settings: Any) -> tuple[str, str]:
    from scheduler.kernel.crypto import keyring, new_data_key

    old = base64.urlsafe_b64encode(keyring(settings).current).decode().rstrip("=")
    return old, new_data_key()


async def _opened(settings: Any) -> list[str]:
    from scheduler.db.records import party_of
    from scheduler.db.tables import Party
    from scheduler.usecases.privacy.personal_data import open_id

    rows = await Party.select().order_by(Party.id)
    return [open_id(settings, party_of(r)) for r in rows]


async def test_rotation_old_values_open_and_reseal_moves_them(
    booked: list[dict[str, str]],
) -> None:
    from scheduler.db.tables import Party
    from scheduler.kernel.crypto import needs_reseal
    from scheduler.kernel.errors import DomainError
    from scheduler.settings import get_settings, parse_settings
    from scheduler.usecases.privacy.personal_data import reseal

    current = get_settings()
    old, new = _keys(current)
    rotated = replace(current, data_keys=parse_settings({"DATA_KEYS": f"{new},{old}"}).data_keys)
    new_only = replace(current, data_keys=parse_settings({"DATA_KEYS": new}).data_keys)
    numbers = [p["id_number"] for p in booked]
    assert await _opened(rotated) == numbers  # old key still listed: everything opens
    with pytest.raises(DomainError, match="service-unavailable"):
        await _opened(new_only)

    report = await reseal(rotated, batch=4)  # several batches
    assert (report.checked, report.resealed, report.unopenable) == (6, 6, 0)
    rows = await Party.select(Party.id_sealed)
    assert not any(needs_reseal(rotated, r["id_sealed"]) for r in rows)
    assert await _opened(new_only) == numbers  # the old key can go now
    again = await reseal(rotated)
    assert (again.checked, again.resealed) == (6, 0)
    # A key removed too early: reported, nothing changed, nothing lost.
    lost = await reseal(replace(current, data_keys=parse_settings({"DATA_KEYS": old}).data_keys))
    assert (lost.resealed, lost.unopenable) == (0, 6)
    assert await _opened(new_only) == numbers


async def test_reseal_command(booked: list[dict[str, str]]) -> None:
    from scheduler.settings import get_settings

    old, new = _keys(get_settings())
    first = await _python(["-m", "scheduler", "reseal"], DATA_KEYS=f"{new},{old}")
    assert first.returncode == 0, first.stderr
    assert "checked 6 sealed values; re-sealed 6" in first.stdout
    gone = await _python(["-m", "scheduler", "reseal"], DATA_KEYS=old)
    assert gone.returncode == 1 and "6 open with no configured key" in gone.stdout


# --- the migration that seals the rows stored before it --------------------------------

BEFORE_SEALING = "2026-11-28T15:59:02:545650"
MIGRATE_TO = (
    "import asyncio, sys, scheduler\n"
    "from piccolo.apps.migrations.commands.forwards import run_forwards\n"
    "r = asyncio.run(run_forwards(app_name='scheduler', migration_id=sys.argv[1]))\n"
    "sys.exit(0 if r.success else 1)\n"
)
LEGACY_ROWS = [
    "INSERT INTO office (id, code, name_zh, name_en) VALUES (1, 'GZ-TH', '天河', 'Tianhe')",
    "INSERT INTO slot (id, office, service, day, start_at, end_at, capacity, booked)"
    " VALUES (1, 1, 'marriage', '2026-01-05', '2026-01-05 01:00:00+00:00',"
    " '2026-01-05 01:30:00+00:00', 4, 1)",
    "INSERT INTO appointment (id, reference, manage_token_hash, office, slot, service, status)"
    " VALUES (1, 'GZTH-AAAA-BBBB', 'x', 1, 1, 'marriage', 'completed')",
    "INSERT INTO party (appointment, role, name, id_type, id_number, id_hash, phone, code_hash)"
    " VALUES (1, 'a', '王小明', 'mainland_id', '11010519491231002X', 'h1', '+8613800138000', 'c')",
    "INSERT INTO party (appointment, role, name, id_type, id_number, id_hash, phone, code_hash)"
    " VALUES (1, 'b', 'Anna', 'passport', 'E12345678', 'h2', '+8613900139000', 'c')",
]


@pytest.fixture
async def scratch_db(db_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own (the session's stays fully migrated)."""
    base = os.environ["DATABASE_URL"]
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path}/legacy.sqlite3"
        return
    import asyncpg

    name = f"legacy_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
        yield base.rsplit("/", 1)[0] + f"/{name}"
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await conn.close()


async def _run_sql(url: str, statements: list[str]) -> list[dict[str, Any]]:
    """Statements on ``url``; the rows of the last one."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.row_factory = sqlite3.Row
            for sql in statements[:-1]:
                conn.execute(sql)
            return [dict(r) for r in conn.execute(statements[-1]).fetchall()]
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for sql in statements[:-1]:
            await conn.execute(sql)
        return [dict(r) for r in await conn.fetch(statements[-1])]
    finally:
        await conn.close()


async def test_migration_seals_existing_id_numbers(scratch_db: str) -> None:
    from scheduler.kernel.crypto import new_data_key, open_sealed
    from scheduler.settings import parse_settings

    key = new_data_key()

    async def migrate(*args: str) -> None:
        done = await _python(list(args), DATABASE_URL=scratch_db, DATA_KEYS=key)
        assert done.returncode == 0, done.stdout + done.stderr

    await migrate("-c", MIGRATE_TO, BEFORE_SEALING)  # the schema as deployments have it
    await _run_sql(scratch_db, [*LEGACY_ROWS, "SELECT 1 AS one"])
    await migrate("-m", "scheduler", "migrate")
    rows = await _run_sql(scratch_db, ["SELECT * FROM party ORDER BY role"])
    assert "id_number" not in rows[0]
    settings = parse_settings({"SECRET_KEY": "another-secret-key-0123", "DATA_KEYS": key})
    assert [open_sealed(settings, "id_number", r["id_sealed"]) for r in rows] == [
        "11010519491231002X",
        "E12345678",
    ]
    assert [r["id_masked"] for r in rows] == ["110***********002X", "*******78"]
    assert [(r["name"], r["id_hash"]) for r in rows] == [("王小明", "h1"), ("Anna", "h2")]
    assert "12345678" not in repr(rows) and "1949" not in repr(rows)
