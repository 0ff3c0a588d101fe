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
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol, cast

from litestar.exceptions import TooManyRequestsException
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

from scheduler.db.engine import current_engine, write_transaction
from scheduler.db.waitlist_tables import RateCounter
from scheduler.domain.addresses import client_key
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


def _key(settings: Settings, kind: str, value: str) -> str:
    return f"{kind}:" + keyed_hash(settings.secret_key, "rate", value)[:40]


async def count_hits(keys: Iterable[str], seconds: int, now: float) -> dict[str, int]:
    """Count one hit for each key in the current window; the totals after it."""
    unique = sorted(set(keys))  # one order for all: no deadlock between two requests
    if not unique:
        return {}
    start = window_start(now, seconds)
    rows = ", ".join("({}, {}, {}, 1)" for _ in unique)
    args: list[Any] = []
    for key in unique:
        args += [key, start, start + seconds]
    sql = _UPSERT.format(rows=rows)
    if current_engine().transaction_exists():
        # Inside the caller's transaction: the count commits or rolls back with it.
        result = await RateCounter.raw(sql, *args)
    else:
        # On SQLite the write waits for this process's writer lock like any other write.
        async with write_transaction():
            result = await RateCounter.raw(sql, *args)
    return {row["key"]: int(row["hits"]) for row in result}


async def purge(now: datetime) -> int:
    """Delete counters whose window has ended (the ``purge_rate_counters`` job)."""
    rows = (
        await RateCounter.delete()
        .where(RateCounter.window_end < int(now.timestamp()))
        .returning(RateCounter.id)
    )
    return len(rows)


async def _check(
    prefilter: Prefilter, limits: dict[str, Limit], now: float, *, count_locally: bool = True
) -> tuple[str, Limit] | None:
    """The first key over its limit, or None. All limits of one call share a window length.

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
    seconds = next(iter(limits.values())).seconds
    hits = await count_hits(limits, seconds, now)
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
            limits[_key(settings, "id", f"{party.id_type}:{party.id_number}")] = by_id
        if by_phone.enabled:
            limits[_key(settings, "phone", party.phone)] = by_phone
    at = now.timestamp()
    # Texts per destination number and day (issue 13.3): what SMS pumping costs us
    # is per number texted, whoever asks and from wherever.
    per_day = Limit(settings.rate_limit_phone_texts_per_day, DAY_SECONDS)
    daily = (
        {_key(settings, "texts", party.phone): per_day for party in parties}
        if per_day.enabled
        else {}
    )
    for group in (limits, daily):  # one window length per _check
        if not group:
            continue
        over = await _check(_PEOPLE, group, at, count_locally=False)
        if over is not None:
            raise DomainError("rate-limited", retry_after=retry_after(at, over[1].seconds))


# Per app settings (by value: Litestar copies a middleware's arguments for every
# route): (address, method, path) -> start of the window in which ClientRateLimit
# refused it. Read by RefusedAgain, the app's outermost middleware, to answer a
# flood before routing and the other middlewares.
_REFUSED: dict[Settings, dict[tuple[str, str, str], int]] = {}
_REFUSED_MAX = 100_000


def _refused(settings: Settings) -> dict[tuple[str, str, str], int]:
    return _REFUSED.setdefault(settings, {})


def _address(scope: Scope) -> str:
    client = scope.get("client")
    # Behind a proxy, `serve` believes X-Forwarded-For from TRUSTED_PROXIES only, so
    # this is the real client; IPv6 clients count by /64 (domain/addresses.py).
    return client_key(client[0] if client else None)


class ClientRateLimit:
    """ASGI middleware: per client address, before the body is even read."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limit = Limit(settings.rate_limit_sms_per_minute, IP_WINDOW_SECONDS)
        self.prefilter = Prefilter()
        self.refused = _refused(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.limit.enabled:
            address = _address(scope)
            key = _key(self.settings, "ip", address)
            now = time.time()
            if await _check(self.prefilter, {key: self.limit}, now) is not None:
                wait = str(retry_after(now, self.limit.seconds))
                if not scope["path"].startswith("/api/"):
                    raise TooManyRequestsException(headers={"Retry-After": wait})  # a page
                if len(self.refused) >= _REFUSED_MAX:
                    self.refused.clear()  # bounded memory; the limit itself is unaffected
                start = window_start(now, self.limit.seconds)
                self.refused[(address, cast("HTTPScope", scope)["method"], scope["path"])] = start
                await _refuse(scope, send, wait)
                return
        await self.app(scope, receive, send)


class RefusedAgain:
    """The app's outermost middleware: a request ClientRateLimit has refused in this
    window (same address, method and path: an API endpoint that texts) is refused
    again here, before routing, logging and metrics, which cost most of a refused
    request (measured: ~190 of ~205 us in process). It refuses nothing new: only
    ClientRateLimit, which counts in the shared store, decides."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.refused = _refused(settings)
        self.enabled = settings.rate_limit_sms_per_minute > 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.enabled and scope["type"] == "http" and self.refused:
            now = time.time()
            method = cast("HTTPScope", scope)["method"]
            found = self.refused.get((_address(scope), method, scope["path"]))
            if found == window_start(now, IP_WINDOW_SECONDS):
                await _refuse(scope, send, str(retry_after(now, IP_WINDOW_SECONDS)))
                return
        await self.app(scope, receive, send)


def _problem_bodies() -> dict[str, bytes]:
    from scheduler.kernel.i18n import LOCALES, translate

    return {
        locale: json.dumps(
            {
                "type": "https://registry.example.cn/problems/rate-limited",
                "title": translate("en", "error.rate-limited"),
                "status": 429,
                "detail": translate(locale, "error.rate-limited"),
            },
            ensure_ascii=False,
        ).encode()
        for locale in LOCALES
    }


_BODIES = _problem_bodies()


async def _refuse(scope: Scope, send: Send, wait: str) -> None:
    """The API's 429 written straight to the connection: a flood costs no routing,
    exception handling or serialisation per request (the body is built once per
    language, the same problem+json the exception handlers write)."""
    from scheduler.kernel.i18n import negotiate

    accept = next((v for k, v in scope["headers"] if k == b"accept-language"), b"")
    body = _BODIES[negotiate(accept.decode("latin-1") or None)]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 429,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", wait.encode()),
        ],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
