"""The outbox: every SMS is a row written in the transaction that causes it.

A dispatcher claims due rows with a lease (a killed worker's rows are taken over
once the lease lapses), reserves send times for them from the sender's shared
pace so that all processes together keep to SMS_RATE_PER_SECOND, sends outside
any transaction, and records the result. Rows are never deleted by sending: the
table is the delivery record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.columns import Column
from piccolo.engine.postgres import PostgresEngine
from piccolo.utils.encoding import dump_json

from scheduler.db import statements
from scheduler.db.engine import current_engine, write_transaction
from scheduler.db.statements import Statement
from scheduler.db.tables import OutboxMessage, SmsPace
from scheduler.domain.sms import after_quiet_hours
from scheduler.notify import delivery
from scheduler.notify.sms import OutgoingSms, SmsBackend, TransportError
from scheduler.notify.terms import SmsTerms
from scheduler.notify.texts import render_for
from scheduler.settings import Settings

log = logging.getLogger("scheduler.outbox")

SEND_CONCURRENCY = 32
# How long a claimed row stays leased beyond its scheduled send time, and beyond
# each renewal while its dispatcher lives. A killed worker's rows wait this long.
LEASE_GRACE_SECONDS = 60.0
# Rows one run claims at most, whatever the rate (unpaced: 10,000/s): bounds the
# sends one run holds, and so how long it takes to stop.
MAX_CLAIM = 1000


def new_message(
    *,
    key: str,
    to_phone: str,
    template: str,
    locale: str,
    payload: dict[str, Any],
    now: datetime,
    terms: SmsTerms,
    urgent: bool = False,
    appointment_id: int | None = None,
    tz: str | None = None,
    validity_seconds: int | None = None,
) -> OutboxMessage:
    """One outbox row, rendered for its recipient under the ``terms`` in force.
    Non-urgent messages wait for the end of quiet hours in the recipient's office
    time zone."""
    due = (
        now
        if urgent
        else after_quiet_hours(now, ZoneInfo(tz or terms.default_timezone), terms.quiet_hours)
    )
    return OutboxMessage(
        key=key,
        to_phone=to_phone,
        template=template,
        locale=locale,
        payload=payload,
        body=render_for(template, locale, payload, terms.rule_for(to_phone)),
        status="pending",
        due_at=due,
        created_at=now,
        urgent=urgent,
        validity_seconds=validity_seconds or terms.validity_seconds,
        appointment_id=appointment_id,
    )


async def enqueue(**fields: Any) -> None:
    """Queue one SMS (fields as ``new_message``, ``terms`` included); the same key
    never queues a second.

    Call inside the transaction of the change that causes the message.
    """
    await enqueue_many([new_message(**fields)])


# What ``new_message`` sets; the other columns start at their defaults.
_QUEUED_COLUMNS = (
    "key",
    "to_phone",
    "template",
    "locale",
    "payload",
    "body",
    "status",
    "due_at",
    "created_at",
    "urgent",
    "validity_seconds",
    "appointment_id",
)


def insert_statement(messages: list[OutboxMessage]) -> Statement:
    """The insert that queues ``messages`` (at least one); rows whose key exists
    already are skipped."""
    rows = []
    for message in messages:
        row = [getattr(message, column) for column in _QUEUED_COLUMNS]
        row[4] = dump_json(row[4])  # payload: the driver takes JSON as text
        rows.append(row)
    return statements.insert(
        "outbox_message", _QUEUED_COLUMNS, rows, "ON CONFLICT (key) DO NOTHING"
    )


async def enqueue_many(messages: list[OutboxMessage]) -> None:
    """Queue many SMS in one statement; rows whose key exists already are skipped."""
    if messages:
        await statements.fetch_all([insert_statement(messages)])


@dataclass(frozen=True)
class Claimed:
    id: int
    to_phone: str
    body: str
    attempts: int
    validity_seconds: int
    urgent: bool


async def claim_due(
    now: datetime,
    owner: str,
    *,
    limit: int,
    lease_seconds: float,
    holding: Collection[int] = (),
) -> list[Claimed]:
    """Atomically lease up to ``limit`` due rows to ``owner`` (urgent first).

    ``holding``: rows this process is still sending. It never takes them back, even
    if their lease lapsed while it was slow; another process may (then the holder
    counts as dead).
    """
    skip_locked = " FOR UPDATE SKIP LOCKED" if isinstance(current_engine(), PostgresEngine) else ""
    keep = f" AND id NOT IN ({', '.join('{}' for _ in holding)})" if holding else ""
    async with write_transaction():
        rows = await OutboxMessage.raw(
            # Constant SQL apart from the locking clause; values go in as parameters.
            "UPDATE outbox_message SET status = 'sending', lease_owner = {}, lease_expires_at = {},"  # noqa: S608
            " attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM outbox_message"
            "  WHERE (status = 'pending' AND due_at <= {})"
            "     OR (status = 'sending' AND lease_expires_at < {}" + keep + ")"
            "  ORDER BY urgent DESC, due_at LIMIT {}" + skip_locked + ")"
            " RETURNING id, to_phone, body, attempts, validity_seconds, urgent",
            owner,
            now + timedelta(seconds=lease_seconds),
            now,
            now,
            *holding,
            limit,
        )
    return [
        Claimed(
            r["id"],
            r["to_phone"],
            r["body"],
            r["attempts"],
            r["validity_seconds"],
            bool(r["urgent"]),
        )
        for r in rows
    ]


async def release(message_ids: list[int], owner: str) -> None:
    """Hand claimed rows back untouched (shutdown, or the pace is too far ahead)."""
    if message_ids:
        await OutboxMessage.update(
            {
                OutboxMessage.status: "pending",
                OutboxMessage.lease_owner: None,
                OutboxMessage.lease_expires_at: None,
                OutboxMessage.attempts: OutboxMessage.attempts - 1,
            }
        ).where(
            OutboxMessage.id.is_in(message_ids)
            & (OutboxMessage.lease_owner == owner)
            & (OutboxMessage.status == "sending")
        )


async def extend_leases(message_ids: list[int], owner: str, until: datetime) -> None:
    """Push the leases of rows ``owner`` still holds out to ``until`` (never shorten)."""
    if message_ids:
        async with write_transaction():
            await OutboxMessage.update({OutboxMessage.lease_expires_at: until}).where(
                OutboxMessage.id.is_in(message_ids)
                & (OutboxMessage.lease_owner == owner)
                & (OutboxMessage.status == "sending")
                & (OutboxMessage.lease_expires_at < until)
            )


async def pace_backlog(sender: str, now: datetime) -> float:
    """Seconds of sending already reserved ahead of ``now`` for this sender."""
    row = await SmsPace.select(SmsPace.next_at).where(SmsPace.sender == sender).first()
    return max(0.0, (row["next_at"] - now).total_seconds()) if row else 0.0


async def reserve(sender: str, count: int, rate: float, now: datetime) -> datetime:
    """Reserve ``count`` consecutive send times; returns the first. Shared by all processes."""
    lock = " FOR UPDATE" if isinstance(current_engine(), PostgresEngine) else ""
    async with write_transaction():
        rows = await SmsPace.raw(
            "SELECT next_at FROM sms_pace WHERE sender = {}" + lock,  # noqa: S608 - constant
            sender,
        )
        start = max(rows[0]["next_at"], now) if rows else now
        end = start + timedelta(seconds=count / rate)
        if rows:
            await SmsPace.update({SmsPace.next_at: end}).where(SmsPace.sender == sender)
        else:
            await SmsPace.insert(SmsPace(sender=sender, next_at=end)).on_conflict(
                target=SmsPace.sender, action="DO UPDATE", values=[(SmsPace.next_at, end)]
            )
    return start


async def record_sent(message_id: int, owner: str, sid: str, now: datetime) -> bool:
    # In write_transaction: SQLite writers of this process queue on its lock instead
    # of spinning in the busy handler (hundreds of records at once otherwise time out).
    async with write_transaction():
        return await _record_sent_row(message_id, owner, sid, now)


async def _record_sent_row(message_id: int, owner: str, sid: str, now: datetime) -> bool:
    rows = await (
        OutboxMessage.update(
            {
                OutboxMessage.status: "sent",
                OutboxMessage.provider_sid: sid,
                OutboxMessage.sent_at: now,
                OutboxMessage.status_at: now,
                OutboxMessage.lease_owner: None,
                OutboxMessage.lease_expires_at: None,
                OutboxMessage.error_code: None,
                OutboxMessage.error_text: None,
            }
        )
        .where((OutboxMessage.id == message_id) & (OutboxMessage.lease_owner == owner))
        .returning(OutboxMessage.id)
    )
    return bool(rows)


class _Recorder:
    """Group commit: the sends that finish while one record transaction commits are
    recorded together in the next (one commit, one fsync, one events query for many).
    ``record`` answers (recorded, a callback for the SID came in before it)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._queue: list[tuple[int, str, datetime, asyncio.Future[tuple[bool, bool]]]] = []
        self._lock = asyncio.Lock()

    async def record(self, message_id: int, sid: str, now: datetime) -> tuple[bool, bool]:
        result: asyncio.Future[tuple[bool, bool]] = asyncio.get_running_loop().create_future()
        self._queue.append((message_id, sid, now, result))
        async with self._lock:
            if not result.done():
                batch, self._queue = self._queue, []
                await self._commit(batch)
        return result.result()

    async def _commit(
        self, batch: list[tuple[int, str, datetime, asyncio.Future[tuple[bool, bool]]]]
    ) -> None:
        try:
            async with write_transaction():
                recorded = [await _record_sent_row(m, self.owner, s, at) for m, s, at, _ in batch]
            early = await delivery.sids_with_pending_events([s for _, s, _, _ in batch])
        except Exception as exc:
            for *_, result in batch:
                result.set_exception(exc)
            return
        except BaseException:  # cancelled: so are the records waiting on this one
            for *_, result in batch:
                result.cancel()
            raise
        for ok, (_, sid, _, result) in zip(recorded, batch, strict=True):
            result.set_result((ok, sid in early))


def retry_delay(attempts: int, base_seconds: int) -> float:
    """Exponential backoff with jitter: an outage does not become a synchronized storm."""
    ceiling = base_seconds * 2 ** max(attempts - 1, 0)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


async def record_failure(
    message: Claimed, owner: str, error: TransportError, now: datetime, settings: Settings
) -> None:
    if error.permanent:
        status, due = "failed", now
    elif message.attempts >= settings.sms_max_attempts:
        status, due = "dead", now
    else:
        status = "pending"
        due = now + timedelta(
            seconds=retry_delay(message.attempts, settings.sms_backoff_base_seconds)
        )
    values: dict[Column | str, Any] = {
        OutboxMessage.status: status,
        OutboxMessage.due_at: due,
        OutboxMessage.status_at: now,
        OutboxMessage.error_code: error.code,
        OutboxMessage.error_text: str(error)[:500],
        OutboxMessage.lease_owner: None,
        OutboxMessage.lease_expires_at: None,
        OutboxMessage.needs_call: status in ("failed", "dead"),
    }
    async with write_transaction():
        await OutboxMessage.update(values).where(
            (OutboxMessage.id == message.id) & (OutboxMessage.lease_owner == owner)
        )


class Dispatcher:
    """One process's sender loop step: claim, pace, send, record."""

    def __init__(
        self,
        backend: SmsBackend,
        owner: str,
        settings: Settings,
        sender: str,
        terms: Callable[[], Awaitable[SmsTerms]],
        *,
        lease_grace_seconds: float = LEASE_GRACE_SECONDS,
    ) -> None:
        """``terms``: asked at each run for the SMS terms in force (the pace and
        quiet hours an admin may change while the worker runs)."""
        self.backend = backend
        self.owner = owner
        self.settings = settings
        self.sender = sender
        self.terms = terms
        self.lease_grace_seconds = lease_grace_seconds
        self._gate = asyncio.Semaphore(SEND_CONCURRENCY)
        self._recorder = _Recorder(owner)
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._runs = 0
        self._holding: set[int] = set()  # claimed by this process, not yet sent or given up
        self._in_flight: set[int] = set()

    async def run_once(self, now: datetime, *, window_seconds: float = 2.0) -> int:
        """Send what this process may send in the next ``window_seconds``; returns the count."""
        if self._stopping.is_set():
            return 0
        self._runs += 1
        self._idle.clear()
        try:
            return await self._run(now, window_seconds)
        finally:
            self._runs -= 1
            if not self._runs:
                self._idle.set()

    async def stop(self, wait_seconds: float) -> set[int]:
        """Start no more sends; wait (at most ``wait_seconds``) for those on the wire to be
        recorded. Returns the ids still on the wire: their leases must be left alone.

        Call before stopping the scheduler: APScheduler cancels a running job, and a
        send cancelled after it reached Twilio is sent again by the next worker."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), wait_seconds)
        return set(self._in_flight)

    async def _run(self, now: datetime, window_seconds: float) -> int:
        terms = await self.terms()
        rate = terms.rate_per_second
        backlog = await pace_backlog(self.sender, now)
        # Messages queued further ahead than their validity would be dropped by
        # Twilio unsent: leave them in the outbox until the queue drains.
        if backlog + window_seconds >= self.settings.sms_validity_seconds:
            return 0
        limit = min(max(1, int(rate * window_seconds)), MAX_CLAIM)
        # Runs may overlap (the next one starts while this one's last sends finish),
        # but only a run that is almost done lets another claim: rows are never
        # claimed faster than this process sends them.
        if len(self._holding) > limit // 4:
            return 0
        lease = window_seconds + backlog + limit / rate + self.lease_grace_seconds
        claimed = await claim_due(
            now, self.owner, limit=limit, lease_seconds=lease, holding=sorted(self._holding)
        )
        if not claimed:
            return 0
        self._holding.update(m.id for m in claimed)
        start = await reserve(self.sender, len(claimed), rate, now)
        loop = asyncio.get_running_loop()
        # ``now`` is the caller's clock; send times and records follow it, the
        # event loop's monotonic clock only measures how far we are into the window.
        origin = loop.time() + (start - now).total_seconds()
        clock = _Clock(now, loop.time())
        done = asyncio.Event()
        keeper = asyncio.create_task(self._keep_leased(clock, done))
        try:
            results = await asyncio.gather(
                *[self._send(m, origin + i / rate, clock, terms) for i, m in enumerate(claimed)],
                return_exceptions=True,  # every send runs to its end, renewed till then
            )
        finally:
            done.set()
            await keeper
        for result in results:
            if isinstance(result, BaseException):
                log.error("outbox send failed", exc_info=result)
        return len(claimed)

    async def _keep_leased(self, clock: _Clock, done: asyncio.Event) -> None:
        """While a run lives, extend the leases of the rows this process holds: a live
        dispatcher slower than its schedule keeps them (nobody sends them twice), while
        a killed one's rows lapse ``lease_grace_seconds`` after its last renewal."""
        every = max(0.2, self.lease_grace_seconds / 3)
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every)
            if self._holding and not done.is_set():
                until = clock.now() + timedelta(seconds=self.lease_grace_seconds)
                try:
                    await extend_leases(sorted(self._holding), self.owner, until)
                except Exception:
                    log.warning("could not extend outbox leases", exc_info=True)

    async def _turn(self, at: float) -> bool:
        """Wait for a send's reserved time; False if the dispatcher stops meanwhile."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), max(0.0, at - loop.time()))
        return not self._stopping.is_set()

    async def _send(self, message: Claimed, at: float, clock: _Clock, terms: SmsTerms) -> None:
        try:
            if not await self._turn(at):
                return  # stopping: still leased to us, the worker hands it back
            self._in_flight.add(message.id)
            await self._send_and_record(message, clock, terms)
        finally:
            self._in_flight.discard(message.id)
            self._holding.discard(message.id)

    async def _send_and_record(self, message: Claimed, clock: _Clock, terms: SmsTerms) -> None:
        # The gate covers the record too: at most SEND_CONCURRENCY messages are ever
        # between "handed to Twilio" and "recorded" (all a kill can cost), and records
        # never pile up behind a slow database while sends run ahead.
        async with self._gate:
            sid = await self._send_one(message, clock)
            if sid is None:
                return
            sent_at = clock.now()
            recorded, early_callbacks = await self._recorder.record(message.id, sid, sent_at)
            if recorded:
                if early_callbacks:
                    await delivery.apply_pending_events(sid, sent_at, self.settings, terms)
                if self.backend.fakes_delivery:
                    await delivery.apply_status(
                        sid, "delivered", None, sent_at, self.settings, terms
                    )

    async def _send_one(self, message: Claimed, clock: _Clock) -> str | None:
        """The provider's SID, or None once the failure is recorded."""
        sms = OutgoingSms(message.to_phone, message.body, message.validity_seconds)
        try:
            return await self.backend.send(sms)
        except TransportError as exc:
            error = exc
        except Exception as exc:
            # A backend bug or an error shape it does not know: retry with backoff
            # until dead, instead of a row that is re-leased forever.
            log.exception("SMS backend %s failed unexpectedly", self.backend.name)
            error = TransportError(f"unexpected: {exc!r}"[:300], permanent=False, code="error")
        await record_failure(message, self.owner, error, clock.now(), self.settings)
        return None


@dataclass(frozen=True)
class _Clock:
    start: datetime
    loop_start: float

    def now(self) -> datetime:
        elapsed = asyncio.get_running_loop().time() - self.loop_start
        return self.start + timedelta(seconds=elapsed)


def sender_id(settings: Settings) -> str:
    return (
        settings.twilio_messaging_service_sid or settings.twilio_from_number or settings.sms_backend
    )
