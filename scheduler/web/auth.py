"""Who is asking: the signed-in staff member of a request, guards and scoping.

Browsers carry an HttpOnly session cookie, which counts only on pages (they are
CSRF-protected); the JSON API is exempt from CSRF, so there a session is only an
``Authorization: Bearer`` token, which a browser never attaches by itself. Each
token works only in the way it was issued (a bearer token is no cookie).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.response import Redirect
from litestar.types import Guard

from scheduler.domain.addresses import client_key
from scheduler.kernel.clock import utcnow
from scheduler.settings import Settings
from scheduler.usecases.staff import accounts as staff
from scheduler.usecases.staff.accounts import StaffMember

COOKIE = "staff_session"
LOGIN_PAGE = "/staff/login"
HOME_PAGE = "/staff/"
# Sign-in attempts per client address and minute, page and API together (one store,
# one counter); the growing delays per account and address are in scheduler.usecases.staff.accounts.
LOGIN_ATTEMPTS_PER_MINUTE = 20


def _client_of(request: Request[Any, Any, Any]) -> str:
    # Behind TRUSTED_PROXIES this is the real client; IPv6 counts by /64.
    return client_key(request.client.host if request.client else None)


LOGIN_LIMIT: DefineMiddleware = RateLimitConfig(
    rate_limit=("minute", LOGIN_ATTEMPTS_PER_MINUTE),
    store="rate_limit_staff_login",
    identifier_for_request=_client_of,
).middleware
_STATE_KEY = "staff_member"


def is_api(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return connection.url.path.startswith("/api/")


def presented_token(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, str] | None:
    """(kind, token) as the request carries it, or None."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "bearer", token.strip()
    cookie = connection.cookies.get(COOKIE)
    if cookie and not is_api(connection):
        return "cookie", cookie
    return None


async def staff_of(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffMember | None:
    """The signed-in member, looked up once per request."""
    state = connection.scope.setdefault("state", {})
    if _STATE_KEY not in state:
        presented = presented_token(connection)
        state[_STATE_KEY] = (
            await staff.authenticate(presented[1], presented[0], utcnow()) if presented else None
        )
    member: StaffMember | None = state[_STATE_KEY]
    return member


def _unauthorized(connection: ASGIConnection[Any, Any, Any, Any]) -> NotAuthorizedException:
    headers = {"WWW-Authenticate": 'Bearer realm="staff"'} if is_api(connection) else None
    return NotAuthorizedException(headers=headers)


async def require_staff(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: a signed-in member (401 on the API; pages redirect to the login page)."""
    if await staff_of(connection) is None:
        raise _unauthorized(connection)


def requires_role(minimum: str) -> Guard:
    """Guard: a signed-in member of at least this role (403 otherwise)."""
    if minimum not in staff.ROLES:
        raise ValueError(f"unknown role {minimum!r}")

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        member = await staff_of(connection)
        if member is None:
            raise _unauthorized(connection)
        if not staff.has_role(member, minimum):
            raise PermissionDeniedException()

    return guard


async def provide_staff(request: Request[Any, Any, Any]) -> StaffMember:
    """Dependency ``member``: the signed-in member (use with the require_staff guard)."""
    member = await staff_of(request)
    if member is None:
        raise _unauthorized(request)
    return member


def login_redirect(request: Request[Any, Any, Any], _: NotAuthorizedException) -> Redirect:
    """Exception handler of the staff pages: anonymous visitors go to the login page."""
    target = request.url.path if request.method == "GET" else HOME_PAGE
    return Redirect(LOGIN_PAGE, status_code=303, query_params={"next": target})


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a staff page of this site, nothing else."""
    if raw and (raw == "/staff" or raw.startswith("/staff/")) and "\\" not in raw:
        return raw
    return HOME_PAGE


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def session_cookie(token: str, settings: Settings) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=token,
        path="/",
        max_age=int(staff.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.public_base_url.startswith("https://"),
    )


def expired_cookie(settings: Settings) -> Cookie:
    return Cookie(
        key=COOKIE,
        value="",
        path="/",
        max_age=0,
        httponly=True,
        samesite="lax",
        secure=settings.public_base_url.startswith("https://"),
    )
