"""The real TwilioBackend (official client, async) against the fake Twilio on loopback,
then through the outbox dispatcher: retryable errors back off until dead, permanent
ones fail at once with Twilio's code."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler.db.engine import write_transaction
from scheduler.db.tables import OutboxMessage
from scheduler.jobs.schedule import dispatch_due
from scheduler.notify import outbox
from scheduler.notify.sms import OutgoingSms, TransportError, TwilioBackend
from scheduler.settings import Settings, get_settings
from scheduler.usecases.policy import policies
from tests.support.fake_twilio import (
    ACCOUNT_SID,
    FROM_NUMBER,
    MESSAGING_SERVICE_SID,
    TO_INVALID,
    TO_NOT_MOBILE,
    TO_OPTED_OUT,
    TO_RATE_LIMITED,
    TO_SERVER_ERROR,
    TO_SLOW,
    FakeTwilio,
)

PUBLIC = "https://registry.example.cn"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PHONE = "+8613800138000"
TIMEOUT = 0.3  # client timeout in these tests; the fake's slow answers take 1.5 s


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean_fake(fake: FakeTwilio) -> None:
    fake.reset()
    fake.configure(slow_seconds=1.5)


def _settings(fake: FakeTwilio, **extra: Any) -> Settings:
    base = dict(public_base_url=PUBLIC, sms_rate_per_second=1000.0) | extra
    return fake.settings(get_settings(), **base)  # type: ignore[no-any-return]


async def _send(settings: Settings, to: str, body: str = "hello") -> str:
    backend = TwilioBackend(settings, timeout_seconds=TIMEOUT)
    try:
        return await backend.send(OutgoingSms(to, body, 3600))
    finally:
        await backend.close()


async def _error(settings: Settings, to: str) -> TransportError:
    with pytest.raises(TransportError) as info:
        await _send(settings, to)
    return info.value


# ---------------------------------------------------------------- the backend alone


@pytest.mark.parametrize("service", [False, True], ids=["from-number", "messaging-service"])
async def test_success_returns_the_sid_and_sends_the_whole_request(
    fake: FakeTwilio, service: bool
) -> None:
    sid = await _send(_settings(fake, **_sender(fake, service)), PHONE, "你好 hello")
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    [request] = fake.requests()
    assert request["sid"] == sid and request["account_sid"] == ACCOUNT_SID
    assert request["to"] == PHONE and request["body"] == "你好 hello"
    assert request["status_callback"] == PUBLIC + "/webhooks/twilio/status"
    assert request["validity_period"] == "3600"
    if service:
        assert request["messaging_service_sid"] == MESSAGING_SERVICE_SID
        assert request["from"] is None
    else:
        assert request["from"] == FROM_NUMBER
        assert request["messaging_service_sid"] is None


def _sender(fake: FakeTwilio, service: bool) -> dict[str, str]:
    env = fake.env(messaging_service=service)
    return {
        "twilio_from_number": env["TWILIO_FROM_NUMBER"],
        "twilio_messaging_service_sid": env["TWILIO_MESSAGING_SERVICE_SID"],
    }


@pytest.mark.parametrize(
    ("to", "code"), [(TO_INVALID, "21211"), (TO_NOT_MOBILE, "21614"), (TO_OPTED_OUT, "21610")]
)
async def test_recipient_errors_are_permanent(fake: FakeTwilio, to: str, code: str) -> None:
    error = await _error(_settings(fake), to)
    assert error.permanent and error.code == code


@pytest.mark.parametrize(
    ("to", "code"), [(TO_RATE_LIMITED, "20429"), (TO_SERVER_ERROR, "20500"), (TO_SLOW, "network")]
)
async def test_rate_limits_server_errors_and_timeouts_are_retryable(
    fake: FakeTwilio, to: str, code: str
) -> None:
    started = time.monotonic()
    error = await _error(_settings(fake), to)
    assert not error.permanent and error.code == code
    # The client's timeout is honoured: a hung Twilio does not hold the sender.
    assert time.monotonic() - started < 1.0


async def test_wrong_credentials_are_permanent(fake: FakeTwilio) -> None:
    error = await _error(_settings(fake, twilio_auth_token="wrong"), PHONE)
    assert error.permanent and error.code == "20003"


async def test_unreachable_twilio_is_retryable(fake: FakeTwilio) -> None:
    closed = _settings(fake, twilio_api_base="http://127.0.0.1:9")  # discard port: refused
    error = await _error(closed, PHONE)
    assert not error.permanent and error.code == "network"


# ---------------------------------------------------------------- through the dispatcher


async def _enqueue(to: str, key: str = "msg:1") -> None:
    async with write_transaction():
        await outbox.enqueue(
            key=key,
            to_phone=to,
            template="code",
            locale="en",
            payload={"code": "123456", "reference": "GZTH-AAAA-BBBB", "minutes": 15},
            now=NOW,
            urgent=True,
            terms=await policies.sms_terms(get_settings()),
        )


async def _dispatch(settings: Settings, now: datetime) -> dict[str, Any]:
    backend = TwilioBackend(settings, timeout_seconds=TIMEOUT)
    try:
        await dispatch_due(backend, "w1", now, settings=settings)
    finally:
        await backend.close()
    row = await OutboxMessage.select().first()
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("to", "code"), [(TO_RATE_LIMITED, "20429"), (TO_SERVER_ERROR, "20500"), (TO_SLOW, "network")]
)
async def test_retryable_errors_back_off_then_the_message_is_dead(
    db: None, fake: FakeTwilio, to: str, code: str
) -> None:
    settings = _settings(fake, sms_max_attempts=3, sms_backoff_base_seconds=10)
    await _enqueue(to)
    now, delays = NOW, []
    for attempt in (1, 2):
        row = await _dispatch(settings, now)
        assert (row["status"], row["attempts"], row["error_code"]) == ("pending", attempt, code)
        delays.append((row["due_at"] - now).total_seconds())
        # Not due before its backoff: nothing is sent in between.
        early = await _dispatch(settings, row["due_at"] - timedelta(seconds=1))
        assert early["attempts"] == attempt
        now = row["due_at"]
    # Exponential with jitter: attempt n waits between base*2^(n-1)/2 and base*2^(n-1).
    assert 5 <= delays[0] <= 10.5 and 10 <= delays[1] <= 20.5 and delays[1] >= delays[0]
    row = await _dispatch(settings, now)
    assert (row["status"], row["attempts"], row["error_code"]) == ("dead", 3, code)
    assert row["needs_call"] and row["provider_sid"] is None
    assert len(fake.requests()) == 3


async def test_a_retry_that_succeeds_records_the_sid(db: None, fake: FakeTwilio) -> None:
    settings = _settings(fake)
    await _enqueue(PHONE)
    fake.force("server_error", times=2)
    now = NOW
    for _ in range(2):
        now = (await _dispatch(settings, now))["due_at"]
    row = await _dispatch(settings, now)
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert row["error_code"] is None and row["provider_sid"] == fake.accepted()[0]["sid"]


@pytest.mark.parametrize(
    ("to", "code"), [(TO_INVALID, "21211"), (TO_NOT_MOBILE, "21614"), (TO_OPTED_OUT, "21610")]
)
async def test_permanent_errors_fail_at_once_with_the_code(
    db: None, fake: FakeTwilio, to: str, code: str
) -> None:
    await _enqueue(to)
    row = await _dispatch(_settings(fake), NOW)
    assert (row["status"], row["attempts"], row["error_code"]) == ("failed", 1, code)
    assert row["needs_call"] and "twilio 400" in row["error_text"]
    # Failed is final: later dispatches never send it again.
    await _dispatch(_settings(fake), NOW + timedelta(days=1))
    assert len(fake.requests()) == 1
