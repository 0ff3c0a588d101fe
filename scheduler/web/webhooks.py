"""Twilio's delivery status callback."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from twilio.request_validator import RequestValidator

from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.notify import delivery
from scheduler.settings import Settings
from scheduler.usecases.policy import policies


def _public_url(settings: Settings, request: Request[Any, Any, Any]) -> str:
    # Twilio signs the URL it called, i.e. the public one; behind a proxy the
    # request's own host and scheme differ, so PUBLIC_BASE_URL is the truth.
    query = request.url.query
    return settings.public_base_url + request.url.path + (f"?{query}" if query else "")


@post("/webhooks/twilio/status", status_code=204, include_in_schema=True, tags=["webhooks"])
async def twilio_status(request: Request[Any, Any, Any], state: State) -> Response[None]:
    settings: Settings = state.settings
    form = {k: str(v) for k, v in (await request.form()).items()}
    signature = request.headers.get("x-twilio-signature", "")
    if not settings.twilio_auth_token or not RequestValidator(settings.twilio_auth_token).validate(
        _public_url(settings, request), form, signature
    ):
        raise PermissionDeniedException("bad signature")
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not sid or not status:
        raise DomainError("invalid-input", field="MessageSid")
    # Unknown SIDs are acknowledged too: a 4xx would make Twilio retry for nothing.
    await delivery.record_callback(
        sid,
        status,
        form.get("ErrorCode") or None,
        utcnow(),
        settings,
        await policies.sms_terms(settings),  # quiet hours a fallback retry waits out
    )
    return Response(None, status_code=204)
