"""Every error becomes RFC 9457 problem+json (API) or a readable page, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from scheduler.kernel.errors import STATUSES, DomainError
from scheduler.kernel.i18n import translate
from scheduler.web.locale import request_locale

log = logging.getLogger("scheduler.web")
_BAD_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
# The database is down or restarting: tell the client to come back, not that we broke.
_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    # A connection the server is terminating (shutdown, failover) can fail its next
    # query with this before asyncpg notices the close; the pool then replaces it.
    asyncpg.InternalClientError,
)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://registry.example.cn/problems/"


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details. ``type`` ends in a stable slug of API.md."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None
    # 409 banned: the local date the ban ends (scheduler/usecases/policy/bans.py).
    banned_until: str | None = None
    # 409 office-not-designated: codes of the offices that may serve the couple.
    offices: list[str] | None = None


def _is_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(("/api/", "/webhooks/", "/schema"))


def problem_response(
    request: Request[Any, Any, Any],
    slug: str,
    *,
    status: int | None = None,
    key: str | None = None,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Response[Any]:
    locale = request_locale(request)
    status = status or STATUSES.get(slug, 500)
    detail = translate(locale, key or f"error.{slug}", **params)
    if _is_api(request):
        body = Problem(
            type=TYPE_BASE + slug,
            title=translate("en", f"error.{slug}"),
            status=status,
            detail=detail,
            instance=request.url.path,
            field=field,
            errors=errors,
            banned_until=params.get("banned_until"),
            offices=params.get("offices"),
        )
        return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
    # Staff pages keep the staff layout (their header, no couple's navigation).
    staff = request.url.path.startswith("/staff/")
    return Template(
        template_name="staff/error.html" if staff else "pages/error.html",
        context={"locale": locale, "status": status, "message": detail},
        status_code=status,
        headers=headers,
    )


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    retry = exc.params.get("retry_after")
    headers = {"Retry-After": str(retry)} if retry is not None else None
    locale = request_locale(request)
    params = dict(exc.params)
    # Several problems at once: each with its field and message, as for bad JSON
    # (or a list a use case put in its params already, passed on as it is).
    given = params.pop("errors", None)
    errors = [
        {"key": e.field or "", "message": translate(locale, e.key, **e.params)} for e in exc.errors
    ] or (given if isinstance(given, list) else None)
    return problem_response(
        request,
        exc.slug,
        key=exc.key,
        field=exc.field,
        errors=errors or None,
        headers=headers,
        **params,
    )


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    # Malformed JSON, unknown fields and wrong types are all "invalid-input" (422).
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        {"key": str(e.get("key", "")), "message": str(e.get("message", ""))}
        for e in extra
        if isinstance(e, dict)
    ]
    field = errors[0]["key"] if errors else None
    return problem_response(request, "invalid-input", field=field, errors=errors or None)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if type(exc) is ClientException and isinstance(exc.__cause__, SerializationException):
        # A body that is not JSON at all (Litestar: 400) is invalid input like any other.
        errors = [{"key": "data", "message": str(exc.detail)}]
        return problem_response(request, "invalid-input", field="data", errors=errors)
    if isinstance(exc, NotFoundException):
        return problem_response(request, "not-found")
    if isinstance(exc, TooManyRequestsException):
        return problem_response(request, "rate-limited", headers=exc.headers)
    if isinstance(exc, NotAuthorizedException):
        return problem_response(request, "unauthorized", headers=exc.headers)
    if isinstance(exc, PermissionDeniedException) and "CSRF" not in str(exc.detail):
        return problem_response(request, "forbidden", headers=exc.headers)
    status = exc.status_code
    return problem_response(
        request, "http-error", status=status, key=f"error.http.{status}", headers=exc.headers
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, _BAD_TEXT):
        # Text PostgreSQL cannot store (NUL bytes): the client's input, not our fault.
        return problem_response(request, "invalid-input")
    if isinstance(exc, RecursionError) and "deserializing" in str(exc):
        # JSON nested deeper than msgspec follows (e.g. 100,000 "["): the client's input.
        errors = [{"key": "data", "message": "nested too deeply"}]
        return problem_response(request, "invalid-input", field="data", errors=errors)
    if isinstance(exc, _UNAVAILABLE):
        log.warning("database unavailable: %s", type(exc).__name__)
        # A PostgreSQL restart takes seconds: worth a retry soon, not a hammering.
        return problem_response(
            request, "service-unavailable", status=503, headers={"Retry-After": "5"}
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(request, "internal", status=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
