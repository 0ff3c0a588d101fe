"""SMS transports behind one function and one error type.

``send`` returns the provider's message id or raises ``TransportError`` whose
``permanent`` flag tells the dispatcher whether a retry can help.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Protocol

from scheduler.domain.identity import mask_phone

log = logging.getLogger("scheduler.sms")


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class SmsBackend(Protocol):
    name: str

    async def send(self, to_phone: str, body: str) -> str: ...


@dataclass
class ConsoleBackend:
    """Development backend: prints the message (phone masked) and never fails."""

    name: str = "console"

    async def send(self, to_phone: str, body: str) -> str:
        sid = "CON" + secrets.token_hex(16)
        log.info("SMS to %s: %s", mask_phone(to_phone), body)
        print(f"[sms] to {mask_phone(to_phone)}: {body}", flush=True)
        return sid


def backend_for(name: str) -> SmsBackend:
    if name == "console":
        return ConsoleBackend()
    raise ValueError(f"SMS backend {name!r} is not available in this build")
