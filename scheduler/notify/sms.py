"""SMS transports behind one function and one error type.

``send`` returns the provider's message SID or raises ``TransportError`` whose
``permanent`` flag tells the dispatcher whether a retry can help. Twilio's
client neither retries nor deduplicates, so retries are the outbox's job and a
retry after a timeout may send twice: the outbox keeps that to one lost lease.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from scheduler.domain.identity import mask_phone
from scheduler.settings import Settings

log = logging.getLogger("scheduler.sms")

# Twilio error codes that a later attempt can cure (rate limited, queue full).
RETRYABLE_CODES = frozenset({20429, 30022, 14107})


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class OutgoingSms:
    to_phone: str
    body: str
    validity_seconds: int


class SmsBackend(Protocol):
    name: str
    # True when the backend will never call the status webhook (console): the
    # dispatcher then records delivery itself.
    fakes_delivery: bool

    async def send(self, sms: OutgoingSms) -> str: ...

    async def close(self) -> None: ...


@dataclass
class ConsoleBackend:
    """Development backend: prints the message (phone masked) and never fails."""

    name: str = "console"
    fakes_delivery: bool = True

    async def send(self, sms: OutgoingSms) -> str:
        log.info("SMS to %s: %s", mask_phone(sms.to_phone), sms.body)
        print(f"[sms] to {mask_phone(sms.to_phone)}: {sms.body}", flush=True)
        return "SM" + secrets.token_hex(16)

    async def close(self) -> None:
        return None


def classify_twilio_error(status: int, code: int | None) -> bool:
    """True if the failure is permanent (do not retry)."""
    # Other 4xx are permanent: 21211 invalid number, 21614 not mobile, 21610 opted out, ...
    return not (code in RETRYABLE_CODES or status == 429 or status >= 500)


class TwilioBackend:
    name = "twilio"
    fakes_delivery = False

    def __init__(self, settings: Settings, *, timeout_seconds: float = 10.0) -> None:
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        base = settings.twilio_api_base.rstrip("/")

        class _Http(AsyncTwilioHttpClient):
            # Tests and the conformance mock run on loopback: point the client there.
            async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                # twilio's client passes timeout=None per request, which aiohttp
                # reads as "no timeout at all": apply ours, or a hung send holds
                # the dispatch job (and its lease) forever.
                kwargs["timeout"] = kwargs.get("timeout") or self.timeout
                return await super().request(
                    method, url.replace("https://api.twilio.com", base, 1), *args, **kwargs
                )

        self._http = _Http(timeout=timeout_seconds)
        self._client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=self._http
        )
        self._sender: dict[str, str] = (
            {"messaging_service_sid": settings.twilio_messaging_service_sid}
            if settings.twilio_messaging_service_sid
            else {"from_": settings.twilio_from_number}
        )
        self._callback = settings.public_base_url + "/webhooks/twilio/status"
        # Resolved now: the first use imports twilio's API modules, which blocks the
        # event loop for a moment and would release the paced sends behind it at once.
        self._messages = self._client.messages

    async def send(self, sms: OutgoingSms) -> str:
        from twilio.base.exceptions import TwilioRestException

        try:
            message = await self._messages.create_async(
                to=sms.to_phone,
                body=sms.body,
                status_callback=self._callback,
                validity_period=sms.validity_seconds,
                **self._sender,
            )
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            raise TransportError(
                f"twilio {exc.status}: {exc.msg}"[:300],
                permanent=classify_twilio_error(exc.status, code),
                code=str(code or exc.status),
            ) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(
                f"network: {type(exc).__name__}", permanent=False, code="network"
            ) from exc
        return str(message.sid)

    async def close(self) -> None:
        await self._http.close()


def backend_for(settings: Settings) -> SmsBackend:
    if settings.sms_backend == "twilio":
        return TwilioBackend(settings)
    return ConsoleBackend()
