"""Twilio's delivery callback: signed, idempotent, never backwards, with a fallback.

Most tests post through the app in the test's loop, signing with Twilio's own
RequestValidator. The last one runs the real chain over loopback sockets: the
official client sends through the fake Twilio, which posts signed callbacks
through a "proxy" to the service started with ``python -m scheduler serve``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.app import create_app
from scheduler.db.engine import write_transaction
from scheduler.db.tables import Appointment, DeliveryEvent, Office, OutboxMessage, Slot
from scheduler.jobs.schedule import dispatch_due
from scheduler.notify import delivery, outbox
from scheduler.notify.sms import OutgoingSms, TwilioBackend
from scheduler.settings import Settings, get_settings
from scheduler.usecases.policy import policies
from tests.support.fake_twilio import AUTH_TOKEN, FROM_NUMBER, FakeTwilio, signature, status_params

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = "https://registry.example.cn"
PATH = "/webhooks/twilio/status"
SID = "SM" + "ab" * 16
PHONE = "+8613800138000"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Guangzhou


def _settings(**extra: Any) -> Settings:
    return replace(get_settings(), twilio_auth_token=AUTH_TOKEN, public_base_url=PUBLIC, **extra)


@asynccontextmanager
async def _client(settings: Settings, base_url: str = "http://testserver") -> AsyncIterator[Any]:
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


@pytest.fixture
async def hook(db: None) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(_settings(sms_fallback="retry")) as client:
        yield client


def _params(status: str, sid: str = SID, error_code: str | None = None) -> dict[str, str]:
    return status_params(sid, status, to=PHONE, sender=FROM_NUMBER, error_code=error_code)


async def _post(
    client: httpx.AsyncClient,
    params: dict[str, str],
    *,
    signed_url: str = PUBLIC + PATH,
    token: str = AUTH_TOKEN,
    **headers: str,
) -> httpx.Response:
    sig = {"X-Twilio-Signature": signature(token, signed_url, params)}
    return await client.post(PATH, data=params, headers=sig | headers)


async def _queue(key: str = "m:1", *, urgent: bool = True) -> None:
    async with write_transaction():
        await outbox.enqueue(
            key=key,
            to_phone=PHONE,
            # Not a code text: codes are never retried (notify/scrub.py, issue 13.13).
            template="expired",
            locale="en",
            payload={"reference": "GZTH-AAAA-BBBB"},
            now=NOW,
            urgent=urgent,
            terms=await policies.sms_terms(get_settings()),
        )


async def _sent(key: str = "m:1", sid: str = SID, *, urgent: bool = True) -> None:
    """A message the dispatcher has handed to Twilio."""
    await _queue(key, urgent=urgent)
    await OutboxMessage.update(
        {OutboxMessage.status: "sent", OutboxMessage.provider_sid: sid, OutboxMessage.sent_at: NOW}
    ).where(OutboxMessage.key == key)


async def _row(key: str = "m:1") -> dict[str, Any]:
    row = await OutboxMessage.select().where(OutboxMessage.key == key).first()
    assert row is not None
    return row


# ---------------------------------------------------------------- signature


async def test_a_signed_callback_is_applied(hook: httpx.AsyncClient) -> None:
    await _sent()
    resp = await _post(hook, _params("delivered"))
    assert resp.status_code == 204
    row = await _row()
    assert row["status"] == "delivered" and row["status_at"] is not None


@pytest.mark.parametrize("tamper", ["changed-param", "wrong-token", "no-signature"])
async def test_a_tampered_callback_is_403_and_changes_nothing(
    hook: httpx.AsyncClient, tamper: str
) -> None:
    await _sent()
    params = _params("delivered")
    if tamper == "changed-param":
        sig = signature(AUTH_TOKEN, PUBLIC + PATH, params)
        params = params | {"MessageStatus": "failed", "ErrorCode": "30003"}
        resp = await hook.post(PATH, data=params, headers={"X-Twilio-Signature": sig})
    elif tamper == "wrong-token":
        resp = await _post(hook, params, token="not-the-auth-token")
    else:
        resp = await hook.post(PATH, data=params)
    assert resp.status_code == 403
    assert (await _row())["status"] == "sent"
    assert await DeliveryEvent.count() == 0
    assert await OutboxMessage.count() == 1  # no fallback queued either


async def test_behind_a_proxy_the_public_url_is_what_is_signed(db: None) -> None:
    await _sent()
    async with _client(_settings(), base_url="http://10.0.0.7:8000") as client:
        # What the app sees (internal host and scheme) is not what Twilio signed.
        seen = await _post(client, _params("delivered"), signed_url="http://10.0.0.7:8000" + PATH)
        assert seen.status_code == 403
        public = await _post(
            client, _params("delivered"), Host="10.0.0.7:8000", **{"X-Forwarded-Proto": "http"}
        )
        assert public.status_code == 204
    assert (await _row())["status"] == "delivered"


# ---------------------------------------------------------------- ordering and repeats


async def test_out_of_order_callbacks_leave_the_final_status(hook: httpx.AsyncClient) -> None:
    await _sent()
    for status in ("delivered", "sent", "queued", "undelivered"):
        code = "30003" if status == "undelivered" else None
        assert (await _post(hook, _params(status, error_code=code))).status_code == 204
    row = await _row()
    assert row["status"] == "delivered" and row["error_code"] is None
    assert await OutboxMessage.count() == 1  # a late "undelivered" queues no fallback


async def test_duplicate_callbacks_are_idempotent(hook: httpx.AsyncClient) -> None:
    await _sent()
    await _post(hook, _params("delivered"))
    first = await _row()
    for _ in range(3):
        assert (await _post(hook, _params("delivered"))).status_code == 204
    again = await _row()
    assert again["status"] == "delivered" and again["status_at"] == first["status_at"]


async def test_an_unknown_sid_is_acknowledged(hook: httpx.AsyncClient) -> None:
    resp = await _post(hook, _params("delivered", sid="SM" + "00" * 16))
    assert resp.status_code == 204
    [event] = await DeliveryEvent.select()
    assert event["status"] == "delivered" and not event["applied"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio.start()
    yield server
    server.stop()


class _CallbackOvertakes:
    """The real Twilio backend, but Twilio's callback lands before the send returns:
    the dispatcher has not recorded the SID when the webhook sees it."""

    name = "twilio"
    fakes_delivery = False

    def __init__(self, inner: TwilioBackend, client: httpx.AsyncClient) -> None:
        self.inner, self.client = inner, client
        self.responses: list[httpx.Response] = []

    async def send(self, sms: OutgoingSms) -> str:
        sid = await self.inner.send(sms)
        self.responses.append(await _post(self.client, _params("delivered", sid=sid)))
        return sid

    async def close(self) -> None:
        await self.inner.close()


async def test_a_callback_before_the_sid_is_recorded_is_applied_later(
    hook: httpx.AsyncClient, fake: FakeTwilio
) -> None:
    fake.reset()
    await _queue()
    settings = fake.settings(_settings(), sms_rate_per_second=1000.0)
    backend = _CallbackOvertakes(TwilioBackend(settings), hook)
    try:
        assert await dispatch_due(backend, "w", NOW, settings=settings) == 1
    finally:
        await backend.close()
    assert [r.status_code for r in backend.responses] == [204]
    row = await _row()
    assert row["status"] == "delivered" and row["provider_sid"] == fake.accepted()[0]["sid"]
    assert all(e["applied"] for e in await DeliveryEvent.select())


# ---------------------------------------------------------------- fallback


async def test_undelivered_30003_queues_one_retry(hook: httpx.AsyncClient) -> None:
    await _sent()
    before = datetime.now(UTC)
    for _ in range(2):  # Twilio repeats callbacks: still one retry
        await _post(hook, _params("undelivered", error_code="30003"))
    row = await _row()
    assert row["status"] == "undelivered" and row["error_code"] == "30003"
    retry = await _row("m:1:fallback")
    assert retry["status"] == "pending" and retry["body"] == row["body"]
    assert retry["due_at"] >= before + timedelta(minutes=60)
    assert await OutboxMessage.count() == 2
    # The retry failing as well asks for a clerk instead of a third message.
    await OutboxMessage.update(
        {OutboxMessage.status: "sent", OutboxMessage.provider_sid: "SM2"}
    ).where(OutboxMessage.key == "m:1:fallback")
    await _post(hook, _params("undelivered", sid="SM2", error_code="30003"))
    assert (await _row("m:1:fallback"))["needs_call"] and await OutboxMessage.count() == 2


@pytest.mark.parametrize(("mode", "code"), [("clerk", "30003"), ("retry", "30008")])
async def test_otherwise_a_clerk_is_asked_to_call(db: None, mode: str, code: str) -> None:
    await _sent()
    async with _client(_settings(sms_fallback=mode)) as client:
        assert (await _post(client, _params("failed", error_code=code))).status_code == 204
    row = await _row()
    assert row["status"] == "failed" and row["needs_call"]
    assert await OutboxMessage.count() == 1


async def test_a_fallback_waits_for_the_end_of_quiet_hours(db: None) -> None:
    await _sent(urgent=False)
    evening = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)  # 20:30 in Guangzhou; retry at 21:30
    await delivery.record_callback(
        SID, "undelivered", "30003", evening, _settings(), await policies.sms_terms(_settings())
    )
    retry = await _row("m:1:fallback")
    assert retry["due_at"] == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # 08:00 next morning


async def test_the_quiet_hours_are_those_of_the_couples_office(db: None) -> None:
    await _sent(urgent=False)
    appointment = await _appointment_in("Asia/Tokyo")
    await OutboxMessage.update({OutboxMessage.appointment_id: appointment}).where(
        OutboxMessage.key == "m:1"
    )
    evening = datetime(2026, 12, 1, 11, 30, tzinfo=UTC)  # 20:30 in Tokyo, 19:30 in Guangzhou
    await delivery.record_callback(
        SID, "undelivered", "30003", evening, _settings(), await policies.sms_terms(_settings())
    )
    retry = await _row("m:1:fallback")
    assert retry["due_at"] == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo


async def _appointment_in(timezone: str) -> int:
    office = await Office.insert(
        Office(code="JP-TK", name_zh="东京", name_en="Tokyo", timezone=timezone)
    ).returning(Office.id)
    start = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    slot = await Slot.insert(
        Slot(
            office=office[0]["id"],
            service="marriage",
            day=start.date(),
            start_at=start,
            end_at=start + timedelta(minutes=30),
            capacity=1,
        )
    ).returning(Slot.id)
    appointment = await Appointment.insert(
        Appointment(
            reference="JPTK-0001-2345",
            manage_token_hash="0" * 64,
            office=office[0]["id"],
            slot=slot[0]["id"],
            service="marriage",
            status="confirmed",
        )
    ).returning(Appointment.id)
    return int(appointment[0]["id"])


# ---------------------------------------------------------------- over real sockets


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(db: None) -> Iterator[str]:
    """The service on loopback, as a proxy behind PUBLIC would reach it."""
    port = _free_port()
    env = os.environ | {
        "PUBLIC_BASE_URL": PUBLIC,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "JOBS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
    }
    proc = subprocess.Popen([sys.executable, "-m", "scheduler", "serve"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _answers(url), 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/api/v1/offices", timeout=1)
    except httpx.TransportError:
        return False
    return True


def _wait_for(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


async def test_end_to_end_twilio_calls_back_through_a_proxy(service: str, fake: FakeTwilio) -> None:
    fake.reset()
    fake.configure(callbacks=["sent", "delivered"], callback_target=service)
    await _queue()
    settings = fake.settings(_settings(), sms_rate_per_second=1000.0)
    backend = TwilioBackend(settings)
    try:
        await dispatch_due(backend, "w", NOW, settings=settings)
    finally:
        await backend.close()
    for _ in range(150):  # the callbacks arrive on their own time
        if len(fake.callbacks()) == 2 and (await _row())["status"] == "delivered":
            break
        await asyncio.sleep(0.1)
    assert (await _row())["status"] == "delivered"
    answers = [(c["status"], c["http"]) for c in fake.callbacks()]
    assert answers == [("sent", 204), ("delivered", 204)]
