"""One party table (issue 15.3): the migration moves the partners of lottery
applications and waiting-list entries into ``party`` with every column as it was,
keeps the bookings' partners and their ids, drops the old tables, and from then on a
party has exactly one owner. Run on a database of its own, both databases."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.kernel.security import keyed_hash
from scheduler.settings import get_settings
from scheduler.usecases.couples.confirmation import Owner
from tests.test_personal_data import (  # noqa: F401 - the scratch_db fixture
    MIGRATE_TO,
    _python,
    _run_sql,
    scratch_db,
)

BEFORE = "2026-12-03T23:55:00:000000"  # the last migration before the one party table
COLUMNS = (
    "role, name, id_type, id_sealed, id_masked, id_hash, number_hash, phone, code_hash,"
    " code_attempts, confirmed_at"
)


def _code(purpose: str, value: str) -> str:
    """A code hash as each kind computed it before the merge (written out here, not
    taken from the code under test)."""
    return keyed_hash(get_settings().secret_key, purpose, value)


def _rows() -> list[str]:
    lottery_a = _code("lottery-code", "7:a:123456")
    lottery_b = _code("lottery-code", "7:b:654321")
    entry_a = _code("code", "waitlist:9:a:111111")
    entry_b = _code("code", "waitlist:9:b:222222")
    return [
        "INSERT INTO office (id, code, name_zh, name_en) VALUES (1, 'GZ-TH', '天河', 'Tianhe')",
        "INSERT INTO slot (id, office, service, day, start_at, end_at, capacity, booked)"
        " VALUES (1, 1, 'marriage', '2026-12-20', '2026-12-20 01:00:00+00:00',"
        " '2026-12-20 01:30:00+00:00', 4, 1)",
        "INSERT INTO appointment (id, reference, manage_token_hash, office, slot, service,"
        " status) VALUES (1, 'GZTH-AAAA-BBBB', 'x', 1, 1, 'marriage', 'confirmed')",
        "INSERT INTO party (id, appointment, role, name, id_type, id_sealed, id_masked, id_hash,"
        " phone, code_hash, code_attempts, confirmed_at) VALUES"
        " (1, 1, 'a', '王小明', 'mainland_id', 's1', 'm1', 'h1', '+8613800138000', 'c1', 1,"
        " '2026-12-01 08:00:00+00:00'),"
        " (2, 1, 'b', 'Anna', 'passport', 's2', 'm2', 'h2', '+8613900139000', 'c2', 2,"
        " '2026-12-01 08:05:00+00:00')",
        "INSERT INTO lottery (id, day, service, opens_at, closes_at, seed_sha256, seed) VALUES"
        " (1, '2027-02-14', 'marriage', '2027-01-01 00:00:00+00:00',"
        " '2027-01-10 00:00:00+00:00', 'sha', 'seed')",
        "INSERT INTO lottery_application (id, lottery, reference, manage_token_hash, status)"
        " VALUES (7, 1, 'LOT-AAAA-BBBB', 'y', 'pending_confirmation')",
        f"INSERT INTO lottery_party (application, {COLUMNS}) VALUES"  # noqa: S608 - constants
        " (7, 'a', '李雷', 'mainland_id', 's3', 'm3', 'h3', 'n3', '+8613700137000',"
        f" '{lottery_a}', 2, '2026-12-02 09:00:00+00:00'),"
        " (7, 'b', '韩梅梅', 'hk_macau_permit', 's4', 'm4', 'h4', 'n4', '+8613600136000',"
        f" '{lottery_b}', 0, NULL)",
        "INSERT INTO waitlist_entry (id, reference, manage_token_hash, service, day, office,"
        " status) VALUES (9, 'GZTH-CCCC-DDDD', 'z', 'marriage', '2026-12-20', 1, 'pending')",
        f"INSERT INTO waitlist_party (entry, {COLUMNS}) VALUES"  # noqa: S608 - constants
        " (9, 'a', '张三', 'mainland_id', 's5', 'm5', 'h5', 'n5', '+8613500135000',"
        f" '{entry_a}', 3, '2026-12-03 10:00:00+00:00'),"
        " (9, 'b', 'Maria', 'passport', 's6', 'm6', 'h6', '', '+8613400134000',"
        f" '{entry_b}', 1, NULL)",
    ]


def _fields(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(r[c.strip()] for c in COLUMNS.split(",")) for r in rows]


async def _on(database_url: str, *args: str) -> None:
    """A command line (``python args``) on the scratch database; it must succeed."""
    done = await _python(list(args), DATABASE_URL=database_url)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_the_migration_moves_lottery_and_waitlist_parties_into_party(
    scratch_db: str,  # noqa: F811 - the fixture
) -> None:
    await _on(scratch_db, "-c", MIGRATE_TO, BEFORE)  # the schema as deployments have it
    await _run_sql(scratch_db, [*_rows(), "SELECT 1 AS one"])
    booked = await _run_sql(scratch_db, ["SELECT * FROM party ORDER BY id"])
    lottery = await _run_sql(scratch_db, ["SELECT * FROM lottery_party ORDER BY role"])
    waiting = await _run_sql(scratch_db, ["SELECT * FROM waitlist_party ORDER BY role"])

    await _on(scratch_db, "-m", "scheduler", "migrate")

    rows = await _run_sql(scratch_db, ["SELECT * FROM party ORDER BY id"])
    assert len(rows) == 6
    # The bookings' partners: the same rows with the same ids, owned by their appointment.
    assert [r["id"] for r in rows[:2]] == [1, 2]
    assert [(r["appointment"], r["application"], r["entry"]) for r in rows[:2]] == [
        (1, None, None)
    ] * 2
    assert _fields(rows[:2]) == _fields([r | {"number_hash": ""} for r in booked])
    # The lottery's and the waiting list's: every column as it was, with their owner.
    moved_lottery = [r for r in rows if r["application"] == 7]
    moved_waiting = [r for r in rows if r["entry"] == 9]
    assert all(r["appointment"] is None and r["entry"] is None for r in moved_lottery)
    assert all(r["appointment"] is None and r["application"] is None for r in moved_waiting)
    assert _fields(moved_lottery) == _fields(lottery)
    assert _fields(moved_waiting) == _fields(waiting)
    # Codes texted before the merge still match: each owner keeps its code hash.
    secret = get_settings().secret_key
    assert [r["code_hash"] for r in moved_lottery] == [
        Owner("application", 7).code_hash(secret, "a", "123456"),
        Owner("application", 7).code_hash(secret, "b", "654321"),
    ]
    assert [r["code_hash"] for r in moved_waiting] == [
        Owner("entry", 9).code_hash(secret, "a", "111111"),
        Owner("entry", 9).code_hash(secret, "b", "222222"),
    ]
    for old in ("lottery_party", "waitlist_party"):
        with pytest.raises(Exception, match=old):
            await _run_sql(scratch_db, [f"SELECT * FROM {old}"])  # noqa: S608 - constants


async def test_a_party_has_exactly_one_owner(
    scratch_db: str,  # noqa: F811 - the fixture
) -> None:
    await _on(scratch_db, "-m", "scheduler", "migrate")
    setup = [r for r in _rows() if "lottery_party" not in r and "waitlist_party" not in r]
    await _run_sql(scratch_db, [*setup, "SELECT 1 AS one"])
    insert = (
        "INSERT INTO party (appointment, application, entry, role, name, id_type, id_hash,"
        " phone, code_hash) VALUES ({}, 'c', 'X', 'passport', 'h', '+86', 'c')"
    )
    for owners in ("NULL, NULL, NULL", "1, 7, NULL", "1, NULL, 9", "NULL, 7, 9", "1, 7, 9"):
        with pytest.raises(Exception, match=r"party_one_owner|CHECK"):
            await _run_sql(scratch_db, [insert.format(owners), "SELECT 1 AS one"])
    # One owner, as every writer gives: accepted.
    for owners in ("1, NULL, NULL", "NULL, 7, NULL", "NULL, NULL, 9"):
        await _run_sql(scratch_db, [insert.format(owners), "SELECT 1 AS one"])
    assert await _run_sql(scratch_db, ["SELECT count(*) AS n FROM party"]) == [{"n": 5}]


MIGRATE_BACK = (
    "import asyncio, sys, scheduler\n"
    "from piccolo.apps.migrations.commands.backwards import run_backwards\n"
    "r = asyncio.run(run_backwards(app_name='scheduler', migration_id=sys.argv[1],"
    " auto_agree=True))\n"
    "sys.exit(0 if r.success else 1)\n"
)
ONE_PARTY = "2026-12-04T11:00:00:000000"


async def test_the_migration_goes_back_without_losing_a_row(
    scratch_db: str,  # noqa: F811 - the fixture
) -> None:
    await _on(scratch_db, "-c", MIGRATE_TO, BEFORE)
    await _run_sql(scratch_db, [*_rows(), "SELECT 1 AS one"])
    lottery = await _run_sql(scratch_db, ["SELECT * FROM lottery_party ORDER BY role"])
    waiting = await _run_sql(scratch_db, ["SELECT * FROM waitlist_party ORDER BY role"])
    await _on(scratch_db, "-m", "scheduler", "migrate")
    await _on(scratch_db, "-c", MIGRATE_BACK, ONE_PARTY)
    back = await _run_sql(scratch_db, ["SELECT * FROM lottery_party ORDER BY role"])
    assert _fields(back) == _fields(lottery)
    back = await _run_sql(scratch_db, ["SELECT * FROM waitlist_party ORDER BY role"])
    assert _fields(back) == _fields(waiting)
    rows = await _run_sql(scratch_db, ["SELECT id, appointment FROM party ORDER BY id"])
    assert rows == [{"id": 1, "appointment": 1}, {"id": 2, "appointment": 1}]
    await _on(scratch_db, "-m", "scheduler", "migrate")  # and forwards again
    rows = await _run_sql(scratch_db, ["SELECT * FROM party ORDER BY id"])
    assert _fields([r for r in rows if r["application"] == 7]) == _fields(lottery)
    assert _fields([r for r in rows if r["entry"] == 9]) == _fields(waiting)
