"""The request's language: ?lang=, then the lang cookie, then Accept-Language."""

from __future__ import annotations

from typing import Any

from litestar import Request

from scheduler.kernel.i18n import LOCALES, negotiate


def request_locale(request: Request[Any, Any, Any]) -> str:
    for candidate in (request.query_params.get("lang"), request.cookies.get("lang")):
        if candidate in LOCALES:
            return str(candidate)
    default = request.app.state.settings.default_locale
    return negotiate(request.headers.get("accept-language"), default)
