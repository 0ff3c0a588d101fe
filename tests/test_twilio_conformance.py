"""What TwilioBackend sends is what Twilio's own OpenAPI spec accepts.

Stoplight Prism (``make prism``) serves the spec as a validating mock: a request
that breaks the spec (path, auth, body fields and their types and patterns) gets
422 instead of the spec's example message. The spec is Twilio's (MIT, see
tests/data/TWILIO_LICENSE), copied into the repository so that a clean checkout
tests against it too.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from scheduler.db.engine import write_transaction
from scheduler.db.tables import OutboxMessage
from scheduler.jobs.schedule import dispatch_due
from scheduler.notify import outbox
from scheduler.notify.sms import OutgoingSms, TransportError, TwilioBackend
from scheduler.settings import Settings, get_settings
from scheduler.usecases.policy import policies
from tests.support.fake_twilio import ACCOUNT_SID, FROM_NUMBER, MESSAGING_SERVICE_SID

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "data" / "twilio_api_v2010.yaml"
SHARED_SPEC = ROOT.parent / "shared" / "twilio" / "twilio_api_v2010.yaml"
PRISM = ROOT / ".tools" / "prism" / "node_modules" / ".bin" / "prism"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prism exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("prism did not start within 60 s")


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    if not PRISM.exists():
        pytest.fail("Prism is not installed: run `make prism` (npm @stoplight/prism-cli@5.14.2)")
    port = _free_port()
    cmd = [str(PRISM), "mock", str(SPEC), "-p", str(port), "-h", "127.0.0.1", "--errors"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_listening(url, proc, time.monotonic() + 60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _settings(prism: str, *, service: bool, **extra: str) -> Settings:
    values = {
        "sms_backend": "twilio",
        "public_base_url": "https://registry.example.cn",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": "conformance-token",
        "twilio_from_number": "" if service else FROM_NUMBER,
        "twilio_messaging_service_sid": MESSAGING_SERVICE_SID if service else "",
        "twilio_api_base": prism,
        "sms_rate_per_second": 1000.0,
    }
    return replace(get_settings(), **(values | extra))


async def _send(settings: Settings, body: str = "【婚姻登记】您的验证码 123456。") -> str:
    backend = TwilioBackend(settings)
    try:
        return await backend.send(OutgoingSms("+8613800138000", body, 14400))
    finally:
        await backend.close()


def test_the_repository_copy_is_twilios_spec() -> None:
    assert SPEC.exists() and (SPEC.parent / "TWILIO_LICENSE").exists()
    if SHARED_SPEC.exists():
        assert SPEC.read_bytes() == SHARED_SPEC.read_bytes()


@pytest.mark.parametrize("service", [False, True], ids=["from-number", "messaging-service"])
async def test_the_spec_accepts_what_we_send(prism: str, service: bool) -> None:
    sid = await _send(_settings(prism, service=service))
    assert re.fullmatch(r"SM[0-9a-fA-F]{32}", sid)


@pytest.mark.parametrize(
    "extra",
    [
        {"twilio_messaging_service_sid": "MG-not-a-service-sid", "twilio_from_number": ""},
        {"twilio_account_sid": "AC-not-an-account-sid"},
    ],
    ids=["bad-body-field", "bad-path"],
)
async def test_the_mock_rejects_what_the_spec_forbids(prism: str, extra: dict[str, str]) -> None:
    # The control: were Prism accepting anything, the test above would prove nothing.
    with pytest.raises(TransportError) as info:
        await _send(_settings(prism, service=True, **extra))
    assert info.value.code == "422" and info.value.permanent


async def test_outbox_messages_go_through_the_spec(db: None, prism: str) -> None:
    async with write_transaction():
        for locale in ("zh-Hans", "zh-Hant", "en"):
            await outbox.enqueue(
                key=f"conformance:{locale}",
                to_phone="+8613800138000",
                template="reminder_day_before",
                locale=locale,
                payload={
                    "reference": "GZTH-AAAA-BBBB",
                    "service": "marriage",
                    "office": "天河区婚姻登记处",
                    "date": "2026-12-02",
                    "start": "09:30",
                },
                now=NOW,
                urgent=True,
                terms=await policies.sms_terms(get_settings()),
            )
    settings = _settings(prism, service=True)
    backend = TwilioBackend(settings)
    try:
        assert await dispatch_due(backend, "w", NOW, settings=settings) == 3
    finally:
        await backend.close()
    rows = await OutboxMessage.select(OutboxMessage.status, OutboxMessage.provider_sid)
    assert all(r["status"] == "sent" and r["provider_sid"] for r in rows)
