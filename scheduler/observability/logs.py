"""Logs: one JSON object per line (or plain text for a developer's terminal), each
with the request id of the request that wrote it, and personal data masked.

Masking happens in the formatter, after the message is rendered, so a careless
``log.info("booked %s", phone)`` anywhere (ours or a library's) still cannot put
a full phone or ID number into the logs.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from litestar.logging.config import LoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
_HEADER = b"x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Mainland ID numbers (17 digits + check), long digit runs (phones, permits),
# E.164 numbers; keep the first 3 and last 2 characters for support calls.
_PERSONAL = re.compile(r"\+?\d{7,17}[\dXx]?")


# A token in a logged URL (``.ics?token=…``, ``/manage/REF?token=…``, any
# ``…token=``) opens a booking: the access log keeps the name, never the value.
_URL_TOKEN = re.compile(r"(?i)([?&;][\w.-]*token=)[^&;\s\"']*")


def mask_text(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        value = match.group(0)
        return value[:3] + "*" * (len(value) - 5) + value[-2:]

    return _PERSONAL.sub(mask, _URL_TOKEN.sub(r"\1[redacted]", text))


class MaskingFormatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        request_id = REQUEST_ID.get()
        record.request_id = request_id
        if not self.json_lines:
            # Masks what was logged, not the line's own fields: a request id of hex
            # digits must stay whole to find the request's other lines.
            line = (
                f"{self.formatTime(record)} {record.levelname} {record.name}"
                f" [{request_id}] {mask_text(record.getMessage())}"
            )
            if record.exc_info:
                line += "\n" + mask_text(self.formatException(record.exc_info))
            return line
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": request_id,
            "message": mask_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


_Formatter = MaskingFormatter  # the name tests and older imports use


def logging_config(level: str, fmt: str) -> LoggingConfig:
    """What ``create_app`` gives Litestar: the same handler as ``configure_logging``
    (masking formatter, request ids), for the root logger and for Litestar's and
    uvicorn's loggers, which propagate to it. Without it Litestar installs its own
    formatter over ours when the app is built."""
    handler = {"class": "logging.StreamHandler", "formatter": "masked"}
    through: dict[str, Any] = {"handlers": [], "propagate": True}
    quiet: dict[str, Any] = {"level": "WARNING", **through}
    return LoggingConfig(
        formatters={"masked": {"()": MaskingFormatter, "json_lines": fmt == "json"}},
        handlers={"console": handler, "queue_listener": handler},
        root={"handlers": ["console"], "level": level},
        loggers={
            "litestar": {"level": level, **through},
            "uvicorn": through,
            "uvicorn.error": through,
            "uvicorn.access": through,
            # APScheduler logs every run of every interval job at INFO: noise, not news.
            "apscheduler": quiet,
            # Twilio's client logs every request at INFO with the recipient and the text.
            "twilio": quiet,
        },
        # internal_error_handler logs unhandled errors itself, masked, once.
        log_exceptions="never",
        disable_existing_loggers=False,
    )


def configure_logging(level: str, fmt: str) -> None:
    """Root handler for this process (the CLI and every uvicorn worker call it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter(json_lines=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # APScheduler logs every run of every interval job at INFO: noise, not news.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Twilio's client logs every request at INFO with the recipient and the text.
    logging.getLogger("twilio").setLevel(logging.WARNING)


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Take the proxy's X-Request-ID when it is sane, else make one; echo it back."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(_HEADER, b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)

    return middleware
