"""Integer path parameters out of range answer 404, on every route (API and pages).

Routing has already turned ``{…:int}`` segments into ints when this middleware
runs; one check here covers every such route, those added later included."""

from __future__ import annotations

from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, Receive, Scope, Send

from scheduler.domain.bounds import id_in_range


def bounded_path_ids(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        for value in scope.get("path_params", {}).values():
            if isinstance(value, int) and not isinstance(value, bool) and not id_in_range(value):
                raise NotFoundException()  # no object has such an id
        await app(scope, receive, send)

    return middleware
