"""Availability as a cache can serve it: what ten thousand couples refresh while the
booking window opens.

Availability is public (no personal data) and a few seconds old is as good as fresh:
a seat that looked free is still refused with 409 at booking, where the caps are kept.
So each process keeps every answer for ``AVAILABILITY_CACHE_SECONDS`` (one computation
per office, service, range and language in that time, however many ask: concurrent
misses share one computation), and tells browsers and proxies the same with
``Cache-Control: public, max-age``. The ``ETag`` is a hash of the JSON body: when a
refresh computes the same calendar again, the tag (and ``Last-Modified``) stay, and a
conditional request is answered ``304`` with no body.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import msgspec
from litestar import Response

from scheduler.usecases.calendar import slots

Key = tuple[str, str, date | None, date | None, str]


@dataclass(frozen=True)
class Entry:
    value: dict[str, Any]
    body: bytes  # the API's JSON
    etag: str
    last_modified: datetime  # whole seconds, UTC
    expires: float  # time.monotonic()

    def headers(self, max_age: int) -> dict[str, str]:
        return {
            "ETag": self.etag,
            "Last-Modified": format_datetime(self.last_modified, usegmt=True),
            "Cache-Control": f"public, max-age={max_age}",
            # The reasons of closed days are in the request's language.
            "Vary": "Accept-Language, Cookie",
        }

    def not_modified(self, if_none_match: str | None, if_modified_since: str | None) -> bool:
        """RFC 9110 §13.1: If-None-Match (weak comparison) wins over If-Modified-Since."""
        if if_none_match is not None:
            return etag_matches(if_none_match, self.etag)
        if if_modified_since:
            try:
                since = parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            return since.tzinfo is not None and self.last_modified <= since
        return False


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110 §13.1.2)."""
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def body_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class CalendarCache:
    """Per-process availability answers, kept ``seconds`` (0: computed every time)."""

    MAX_ENTRIES = 4096

    def __init__(self, seconds: float, encode: Callable[[dict[str, Any]], bytes]) -> None:
        self.seconds = seconds
        self._encode = encode
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._computing: dict[Key, asyncio.Future[Entry]] = {}
        # Kept whatever ``seconds`` is: its keys are what a page shows, not a time.
        self.pages = RenderedPages()

    @property
    def max_age(self) -> int:
        return int(self.seconds)

    async def availability(
        self,
        office: str,
        service: str,
        start: date | None,
        end: date | None,
        now: datetime,
        *,
        locale: str,
    ) -> Entry:
        key: Key = (office.upper(), service, start, end, locale)
        entry = self._entries.get(key)
        if entry is not None and entry.expires > time.monotonic():
            return entry
        pending = self._computing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._computing[key] = future
        try:
            fresh = await self._compute(key, now, entry)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(fresh)
            return fresh
        finally:
            del self._computing[key]

    async def _compute(self, key: Key, now: datetime, previous: Entry | None) -> Entry:
        office, service, start, end, locale = key
        value = await slots.availability(office, service, start, end, now, locale=locale)
        body = self._encode(value)
        etag = body_etag(body)
        unchanged = previous is not None and previous.etag == etag
        entry = Entry(
            value=value,
            body=body,
            etag=etag,
            last_modified=previous.last_modified
            if unchanged and previous
            else now.astimezone(UTC).replace(microsecond=0),
            expires=time.monotonic() + self.seconds,
        )
        if self.seconds > 0:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)
        return entry


def json_encoder(convert: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], bytes]:
    """The API's body: the use case's dict through the response schema, as JSON."""
    encoder = msgspec.json.Encoder()

    def encode(value: dict[str, Any]) -> bytes:
        return encoder.encode(convert(value))

    return encode


def cached_json(
    headers: Any, entry: Entry, max_age: int, media_type: str = "application/json"
) -> Response[Any]:
    """200 with the body, or 304 without it when the client's copy is current."""
    fresh = entry.not_modified(headers.get("if-none-match"), headers.get("if-modified-since"))
    return Response(
        b"" if fresh else entry.body,
        status_code=304 if fresh else 200,
        media_type=media_type,
        headers=entry.headers(max_age),
    )


class RenderedPages:
    """The month page as rendered, by what it shows: rendering is most of what a page
    costs, and thousands of couples ask for the same month in the same language.

    The key is a digest of everything the template reads (the calendar model, the
    language, the address, the mode), except the slots of days not chosen, which the
    month grid does not show: a booking that leaves a day open changes the API's answer
    but not the page, so the page is not rendered again. Only public pages are kept
    (the booking month; never the move picker, which carries a reference and a token).
    """

    MAX_ENTRIES = 1024

    def __init__(self) -> None:
        self._pages: OrderedDict[bytes, tuple[bytes, str]] = OrderedDict()
        self._encoder = msgspec.json.Encoder()

    def key(self, template: str, context: dict[str, Any]) -> bytes | None:
        """None when the context holds something that cannot be part of a key."""
        shown = {
            name: _shown_calendar(value) if name == "cal" else value
            for name, value in context.items()
            # date_label and friends: functions of the language, which is in the key.
            if not callable(value)
        }
        try:
            encoded = self._encoder.encode([template, shown])
        except (TypeError, msgspec.EncodeError):
            return None
        return hashlib.blake2b(encoded, digest_size=16).digest()

    def get(self, key: bytes) -> tuple[bytes, str] | None:
        """The page's body and its ETag."""
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def put(self, key: bytes, body: bytes, etag: str) -> None:
        self._pages[key] = (body, etag)
        self._pages.move_to_end(key)
        while len(self._pages) > self.MAX_ENTRIES:
            self._pages.popitem(last=False)


def _shown_calendar(cal: dict[str, Any]) -> dict[str, Any]:
    """The calendar model without the slots of the month grid's days (only the chosen
    day's slots, under ``selected``, are shown)."""
    weeks = [
        [None if d is None else {k: v for k, v in d.items() if k != "slots"} for d in week]
        for week in cal["weeks"]
    ]
    return cal | {"weeks": weeks}
