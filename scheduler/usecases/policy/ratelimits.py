"""Abuse limits shared by every process: per client address, per ID number and per
phone, on applying (waiting list, lottery), booking and anything that sends an SMS.

Two layers:

* **Shared store**: fixed-window counters in the ``rate_counter`` table. One
  statement (an upsert with RETURNING) counts a hit for every key of a request and
  answers the new totals, so two processes can never both admit the last hit of a
  window: the database serialises the increments of one row.
* **In-process pre-filter** (``domain.ratelimits.Prefilter``): counts the same hits
  in memory and refuses, without a query, a key this process alone has already
  seen over the limit, or one the store has refused in this window. It only
  refuses what the store would refuse too, so the limit enforced across processes
  is the store's; the pre-filter keeps a one-address flood from turning into one
  database write per request (only about ``limit`` of them reach the store per
  window and process, the rest are answered from memory).

Keys are keyed hashes: the table never holds an address, ID number or phone.
The per-address limit is Litestar middleware (scheduler/web/ratelimit.py) counting
through ``check`` here; this module counts, the web layer answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from scheduler.db import statements
from scheduler.db.engine import current_engine, write_transaction
from scheduler.db.waitlist_tables import RateCounter
from scheduler.domain.ratelimits import Limit, Prefilter, retry_after, window_start
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import keyed_hash
from scheduler.settings import Settings

IP_WINDOW_SECONDS = 60
PERSON_WINDOW_SECONDS = 3600
DAY_SECONDS = 86400

_UPSERT = (
    "INSERT INTO rate_counter (key, window_start, window_end, hits) VALUES {rows}"
    " ON CONFLICT (key) DO UPDATE SET"
    " hits = CASE WHEN rate_counter.window_start = excluded.window_start"
    " THEN rate_counter.hits + 1 ELSE 1 END,"
    " window_start = excluded.window_start, window_end = excluded.window_end"
    " RETURNING key, hits"
)


def counter_key(settings: Settings, kind: str, value: str) -> str:
    """The stored key of one counted value: a keyed hash, never the value itself."""
    return f"{kind}:" + keyed_hash(settings.secret_key, "rate", value)[:40]


async def count_hits(windows: Mapping[str, int], now: float) -> dict[str, int]:
    """Count one hit for each key (-> its window length in seconds) in its current
    window; the totals after it. One statement whatever the window lengths."""
    unique = sorted(windows)  # one order for all: no deadlock between two requests
    if not unique:
        return {}
    rows = ", ".join("({}, {}, {}, 1)" for _ in unique)
    args: list[Any] = []
    for key in unique:
        start = window_start(now, windows[key])
        args += [key, start, start + windows[key]]
    sql = _UPSERT.format(rows=rows)
    if current_engine().transaction_exists():
        # Inside the caller's transaction: the count commits or rolls back with it.
        result = await statements.fetch(sql, *args)
    else:
        # On SQLite the write waits for this process's writer lock like any other write.
        async with write_transaction():
            result = await statements.fetch(sql, *args)
    return {row["key"]: int(row["hits"]) for row in result}


async def purge(now: datetime) -> int:
    """Delete counters whose window has ended (the ``purge_rate_counters`` job)."""
    rows = (
        await RateCounter.delete()
        .where(RateCounter.window_end < int(now.timestamp()))
        .returning(RateCounter.id)
    )
    return len(rows)


async def check(
    prefilter: Prefilter, limits: dict[str, Limit], now: float, *, count_locally: bool = True
) -> tuple[str, Limit] | None:
    """The first key over its limit, or None (each limit in its own window).

    ``count_locally=False`` when the shared count may roll back (it is written in the
    caller's transaction): then the pre-filter only repeats the store's refusals,
    which stay true for the rest of the window whatever rolls back."""
    for key, limit in limits.items():
        admitted = (
            prefilter.admit(key, limit, now)
            if count_locally
            else not (prefilter.blocked(key, limit, now))
        )
        if not admitted:
            return key, limit
    hits = await count_hits({key: limit.seconds for key, limit in limits.items()}, now)
    for key, limit in limits.items():
        if hits.get(key, 0) > limit.count:
            prefilter.block(key, limit, now)
            return key, limit
    return None


class PartyLike(Protocol):
    @property
    def id_type(self) -> str: ...
    @property
    def id_number(self) -> str: ...
    @property
    def phone(self) -> str: ...


_PEOPLE = Prefilter()


async def check_parties(settings: Settings, parties: Iterable[PartyLike], now: datetime) -> None:
    """Count a hold, application or code request against each party's ID number and
    phone; ``rate-limited`` (429, with Retry-After) if any is over its hourly limit.

    Call it inside the transaction that texts the codes: the count commits with the
    texts (no extra write transaction per booking), and an attempt refused for
    another reason rolls its count back. What it bounds is what costs: SMS sent and
    seats held per person across all addresses; attempts are bounded per address."""
    parties = list(parties)
    by_id = Limit(settings.rate_limit_id_per_hour, PERSON_WINDOW_SECONDS)
    by_phone = Limit(settings.rate_limit_phone_per_hour, PERSON_WINDOW_SECONDS)
    limits: dict[str, Limit] = {}
    for party in parties:
        if by_id.enabled:
            limits[counter_key(settings, "id", f"{party.id_type}:{party.id_number}")] = by_id
        if by_phone.enabled:
            limits[counter_key(settings, "phone", party.phone)] = by_phone
    at = now.timestamp()
    # Texts per destination number and day (issue 13.3): what SMS pumping costs us
    # is per number texted, whoever asks and from wherever.
    per_day = Limit(settings.rate_limit_phone_texts_per_day, DAY_SECONDS)
    daily = (
        {counter_key(settings, "texts", party.phone): per_day for party in parties}
        if per_day.enabled
        else {}
    )
    # Both windows in one statement; the hourly keys first, so a refusal names them
    # as before when both are over.
    over = await check(_PEOPLE, limits | daily, at, count_locally=False)
    if over is not None:
        raise DomainError("rate-limited", retry_after=retry_after(at, over[1].seconds))
