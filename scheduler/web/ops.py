"""Endpoints for operators and orchestrators: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException

from scheduler.kernel.clock import utcnow
from scheduler.observability import health
from scheduler.observability.metrics import exposition


@get("/health/live", include_in_schema=False, sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", include_in_schema=False)
async def ready(state: State) -> Response[dict[str, Any]]:
    checks = await health.readiness(utcnow(), state.settings.health_outbox_backlog_max)
    ok = all(check.ok for check in checks)
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return Response(body, status_code=200 if ok else 503)


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    token = state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise NotAuthorizedException()
    now = utcnow()
    body = exposition(await health.outbox_stats(now), now)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


OPS_ROUTES = [live, ready, metrics]
