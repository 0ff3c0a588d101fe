"""The app's outermost layer: a request id and the security headers on every answer.

It wraps Litestar's whole ASGI handler, not a route's middleware stack, so answers
made before or without routing (404, 405, the rate limit's fast refusals, static
files) carry them too, and every log line of the request (uvicorn's access line
included, written when the answer starts) has its request id.

* ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no page of ours can
  be framed (clickjacking a staff member's "lift ban" button).
* A CSP for pages: scripts from this site only (no inline script, no eval), styles
  from this site and inline ``style`` (htmx inserts its indicator style), no
  plugins, forms post here only.
* ``Cache-Control: no-store`` on every answer but static files and those a handler
  explicitly declared ``public`` (availability, which holds no personal data and is
  cached on purpose: scheduler/web/calendar_cache.py): pages and the other API
  answers show names, ID numbers, references and tokens, which no shared or browser
  cache may keep.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.observability.logs import request_id_middleware

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Litestar's Swagger UI page loads its script from a CDN: only the framing rule there.
SCHEMA_CSP = "frame-ancestors 'none'"
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    return next((v for k, v in headers if k.lower() == b"content-type"), b"")


def _with_security_headers(path: str, headers: list[tuple[bytes, bytes]]) -> None:
    names = {k.lower() for k, _ in headers}
    if path.startswith("/schema"):
        csp = SCHEMA_CSP
    elif _content_type(headers).startswith(b"text/html"):
        csp = PAGE_CSP
    else:
        csp = DATA_CSP
    headers.append((b"x-frame-options", b"DENY"))
    headers.append((b"x-content-type-options", b"nosniff"))
    headers.append((b"referrer-policy", b"same-origin"))
    if b"content-security-policy" not in names:
        headers.append((b"content-security-policy", csp.encode()))
    declared = next((v for k, v in headers if k.lower() == b"cache-control"), b"")
    if not path.startswith("/static/") and not declared.startswith(b"public"):
        headers[:] = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
        headers.append((b"cache-control", b"no-store"))


def security_headers(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                _with_security_headers(path, headers)
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def edge(app: ASGIApp) -> ASGIApp:
    """Request id outermost (its headers and log lines cover everything inside)."""
    return request_id_middleware(security_headers(app))
