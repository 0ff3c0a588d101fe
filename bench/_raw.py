"""The raw-SQL ceiling: the booking transaction without the service around it.

The same statements the service issues for a hold, straight through asyncpg (a pool
as large as the server's) or aiosqlite (one connection, ``BEGIN IMMEDIATE``, writers
queued on an asyncio lock as the service does), at the same client concurrency:

    UPDATE slot ... booked < capacity RETURNING day_covered   (no row: 409, roll back)
    UPDATE office_day ... RETURNING (only where the slot caps do not keep the day's,
    issue 16), UPDATE onsite_window ... RETURNING
    INSERT appointment RETURNING id, 2x INSERT party, 2x INSERT id_claim,
    2x INSERT outbox_message

Not included (the service does them too): the slot/office/ID-claim reads before the
transaction, the appointment_event insert and the reload of the appointment.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from _common import SECRET_KEY, Result, person

from scheduler.domain.identity import mask_id
from scheduler.kernel.crypto import seal
from scheduler.settings import parse_settings

_SETTINGS = parse_settings({"SECRET_KEY": SECRET_KEY})

Query = Callable[..., Awaitable[Any]]  # (sql, *args) -> first column of the first row

UPD_SLOT = (
    "UPDATE slot SET booked = booked + 1 WHERE id = ? AND booked < capacity"
    " RETURNING day_covered"
)
UPD_DAY = (
    "UPDATE office_day SET booked = booked + 1"
    " WHERE office = ? AND day = ? AND booked < capacity RETURNING id"
)
UPD_WINDOW = (
    "UPDATE onsite_window SET people = people + ?"
    " WHERE office = ? AND window_start = ? AND people + ? <= capacity RETURNING id"
)
INS_APPOINTMENT = (
    "INSERT INTO appointment (reference, manage_token_hash, office, slot, service, status,"
    " locale, people, hold_expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " RETURNING id"
)
INS_PARTY = (
    "INSERT INTO party (appointment, role, name, id_type, id_sealed, id_masked, id_hash, phone,"
    " code_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INS_CLAIM = "INSERT INTO id_claim (claim, appointment) VALUES (?, ?)"
INS_OUTBOX = (
    "INSERT INTO outbox_message (key, to_phone, template, locale, payload, body, status,"
    " due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def _numbered(sql: str) -> str:
    """asyncpg wants $1, $2, ... where sqlite3 takes ?."""
    counter = iter(range(1, 100))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _keyed(purpose: str, value: str) -> str:
    return hmac.new(SECRET_KEY.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


async def _take_seat(q: Query, slot: dict[str, Any]) -> bool:
    covered = await q(UPD_SLOT, slot["id"])
    if covered is None:
        return False
    if not covered and await q(UPD_DAY, slot["office"], slot["day"]) is None:
        return False
    return await q(UPD_WINDOW, 2, slot["office"], slot["window"], 2) is not None


async def _book(q: Query, n: int, slot: dict[str, Any], counters_last: bool = False) -> bool:
    """One hold; False when a cap refused it (the caller rolls back). The service takes
    the counters first; ``counters_last`` locks their rows only for the final statements."""
    now = datetime.now(UTC)
    if not counters_last and not await _take_seat(q, slot):
        return False
    reference = f"RAW-{n:010d}"
    appointment = await q(
        INS_APPOINTMENT,
        reference,
        hashlib.sha256(reference.encode()).hexdigest(),
        slot["office"],
        slot["id"],
        "marriage",
        "pending_confirmation",
        "zh-Hans",
        2,
        now + timedelta(minutes=15),
        now,
    )
    parties = (("a", person(2 * n)), ("b", person(2 * n + 1)))
    for role, p in parties:
        id_hash = _keyed("id", f"{p['id_type']}:{p['id_number']}")
        await q(
            INS_PARTY,
            appointment,
            role,
            p["name"],
            p["id_type"],
            seal(_SETTINGS, "id_number", p["id_number"]),  # the service seals too
            mask_id(p["id_number"]),
            id_hash,
            p["phone"],
            _keyed("code", f"{appointment}:{role}:123456"),
        )
    for _, p in parties:
        await q(
            INS_CLAIM, "marriage:" + _keyed("id", f"{p['id_type']}:{p['id_number']}"), appointment
        )
    for role, p in parties:
        payload = {"code": "123456", "reference": reference, "minutes": 15}
        await q(
            INS_OUTBOX,
            f"appointment:{appointment}:code:{role}",
            p["phone"],
            "code",
            "zh-Hans",
            json.dumps(payload),
            f"【婚姻登记】验证码 123456，预约号 {reference}，15 分钟内有效。",
            "pending",
            now,
            now,
        )
    return await _take_seat(q, slot) if counters_last else True


async def _drive(
    jobs: Iterable[tuple[int, dict[str, Any]]],
    concurrency: int,
    one: Callable[[int, dict[str, Any]], Awaitable[bool]],
) -> Result:
    pending = iter(jobs)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []

    async def worker() -> None:
        for n, slot in pending:
            started = time.perf_counter()
            try:
                status = 201 if await one(n, slot) else 409
            except Exception:  # counted, like a 5xx of the service
                status = 500
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(statuses, latencies, time.perf_counter() - wall0, time.process_time() - cpu0)


async def raw_postgres(
    dsn: str,
    jobs: Iterable[tuple[int, dict[str, Any]]],
    concurrency: int,
    pool_size: int,
    counters_last: bool = False,
) -> Result:
    import asyncpg

    numbered: dict[str, str] = {}
    async with asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size) as pool:

        async def one(n: int, slot: dict[str, Any]) -> bool:
            async with pool.acquire() as conn:

                async def q(sql: str, *args: Any) -> Any:
                    text = numbered.get(sql) or numbered.setdefault(sql, _numbered(sql))
                    return await conn.fetchval(text, *args)

                tx = conn.transaction()
                await tx.start()
                try:
                    ok = await _book(q, n, slot, counters_last)
                except BaseException:
                    await tx.rollback()
                    raise
                await (tx.commit() if ok else tx.rollback())
                return ok

        return await _drive(jobs, concurrency, one)


def _sqlite_value(value: Any) -> Any:
    """What Piccolo stores on SQLite: ISO dates, str() of UTC datetimes."""
    if isinstance(value, datetime):
        return str(value.astimezone(UTC))
    if isinstance(value, date):
        return value.isoformat()
    return value


async def raw_sqlite(
    path: str,
    jobs: Iterable[tuple[int, dict[str, Any]]],
    concurrency: int,
    counters_last: bool = False,
) -> Result:
    import aiosqlite

    lock = asyncio.Lock()
    async with aiosqlite.connect(path, isolation_level=None, timeout=30) as conn:
        await conn.execute("PRAGMA foreign_keys = 1")

        async def q(sql: str, *args: Any) -> Any:
            rows = list(await conn.execute_fetchall(sql, [_sqlite_value(a) for a in args]))
            return rows[0][0] if rows else None

        async def one(n: int, slot: dict[str, Any]) -> bool:
            async with lock:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    ok = await _book(q, n, slot, counters_last)
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT" if ok else "ROLLBACK")
                return ok

        return await _drive(jobs, concurrency, one)
