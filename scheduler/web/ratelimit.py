"""Per-client rate limits on endpoints that send SMS (each booking texts two codes)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig

from scheduler.settings import Settings


def sms_rate_limit(settings: Settings, name: str) -> DefineMiddleware:
    """A limiter with its own store: limits sharing a store would share one counter."""
    per_minute = settings.rate_limit_sms_per_minute

    # async: Litestar runs a sync check_throttle_handler in a worker thread on
    # every request (measured: a thread hop per booking).
    async def enabled(_request: Request[Any, Any, Any]) -> bool:
        return per_minute > 0

    config = RateLimitConfig(
        rate_limit=("minute", max(per_minute, 1)),
        store=f"rate_limit_{name}",
        check_throttle_handler=enabled,
    )
    return config.middleware
