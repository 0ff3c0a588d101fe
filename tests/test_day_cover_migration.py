"""The migration of the day's proofs (issue 16): on a database with bookings, it works
the proofs out for every existing day (a covered day, a day its row keeps, slots
without a day row), and back it recounts the day rows it stopped keeping. Run on a
database of its own, both databases."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_one_party_table import MIGRATE_BACK, _on
from tests.test_personal_data import (  # noqa: F401 - the scratch_db fixture
    MIGRATE_TO,
    _run_sql,
    scratch_db,
)

MIGRATIONS = Path(__file__).resolve().parent.parent / "scheduler" / "db" / "migrations"
OURS = "2026-12-05T02:00:00:000000"


def _before() -> str:
    """The migration just before ours (others may be added before it later)."""
    ids = [
        m.group(1)
        for p in MIGRATIONS.glob("scheduler_*.py")
        if (m := re.search(r'^ID = "([^"]+)"', p.read_text(), re.MULTILINE))
    ]
    return max(i for i in ids if i < OURS)


def _slot(slot_id: int, day: str, hour: int, cap: int, booked: int, held: int = 0) -> str:
    return (
        "INSERT INTO slot (id, office, service, day, start_at, end_at, capacity, booked, held)"  # noqa: S608 - test constants
        f" VALUES ({slot_id}, 1, 'marriage', '{day}', '{day} {hour:02d}:00:00+00:00',"
        f" '{day} {hour:02d}:30:00+00:00', {cap}, {booked}, {held})"
    )


ROWS = [
    "INSERT INTO office (id, code, name_zh, name_en) VALUES (1, 'GZ-TH', '天河', 'Tianhe')",
    # 2026-12-20: two slots of 4 and a day of 100: covered (the share from 2 %).
    _slot(1, "2026-12-20", 1, 4, 1, 1),
    _slot(2, "2026-12-20", 2, 4, 1),
    "INSERT INTO office_day (office, day, capacity, booked, held)"
    " VALUES (1, '2026-12-20', 100, 2, 1)",
    # 2026-12-21: two slots of 4 and a day of 5: its row keeps the cap.
    _slot(3, "2026-12-21", 1, 4, 2),
    _slot(4, "2026-12-21", 2, 4, 1),
    "INSERT INTO office_day (office, day, capacity, booked, held)"
    " VALUES (1, '2026-12-21', 5, 3, 0)",
    # 2026-12-22: slots but no day row.
    _slot(5, "2026-12-22", 1, 4, 0),
]
PROOFS = "SELECT id, day_covered, share_covered FROM slot ORDER BY id"


async def test_the_migration_proves_existing_days_and_goes_back(
    scratch_db: str,  # noqa: F811 - the fixture
) -> None:
    before = _before()
    assert before < OURS
    await _on(scratch_db, "-c", MIGRATE_TO, before)
    await _run_sql(scratch_db, [*ROWS, "SELECT 1 AS one"])
    await _on(scratch_db, "-m", "scheduler", "migrate")
    proofs = await _run_sql(scratch_db, [PROOFS])
    assert [(r["id"], bool(r["day_covered"]), r["share_covered"]) for r in proofs] == [
        (1, True, 2),
        (2, True, 2),
        (3, False, None),
        (4, False, None),
        (5, False, None),
    ]
    # The covered day's row is no longer kept: a booking there leaves it behind.
    await _run_sql(
        scratch_db,
        [
            "UPDATE slot SET booked = booked + 1 WHERE id = 2",
            "SELECT booked FROM office_day WHERE day = '2026-12-20'",
        ],
    )
    await _on(scratch_db, "-c", MIGRATE_BACK, OURS)
    days = await _run_sql(scratch_db, ["SELECT day, booked, held FROM office_day ORDER BY day"])
    assert [(r["booked"], r["held"]) for r in days] == [(3, 1), (3, 0)]  # recounted
    columns = await _run_sql(scratch_db, ["SELECT * FROM slot WHERE id = 1"])
    assert "day_covered" not in columns[0] and "share_covered" not in columns[0]
    await _on(scratch_db, "-m", "scheduler", "migrate")  # and forwards again
    assert len(await _run_sql(scratch_db, [PROOFS])) == 5
