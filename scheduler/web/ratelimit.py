"""Per-client rate limits on endpoints that send SMS (each booking texts two codes)."""

from __future__ import annotations

from litestar.middleware.base import DefineMiddleware

from scheduler.settings import Settings
from scheduler.usecases.policy.ratelimits import ClientRateLimit, RefusedAgain


def sms_rate_limit(settings: Settings, name: str) -> DefineMiddleware:
    """Per client address, counted in the shared store (scheduler/usecases/policy/ratelimits.py), so
    the limit holds across processes and across the API and the pages: ``name`` only
    tells the mounts apart; every mount counts against the same per-address total."""
    del name
    return DefineMiddleware(ClientRateLimit, settings=settings)


def refused_again(settings: Settings) -> DefineMiddleware:
    """The app-level fast path for requests the limit already refused (outermost)."""
    return DefineMiddleware(RefusedAgain, settings=settings)
