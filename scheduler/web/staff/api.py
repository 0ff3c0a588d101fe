"""Staff sign-in for API clients: bearer tokens (paths fixed by API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from msgspec import Meta

from scheduler.kernel.clock import utcnow
from scheduler.usecases.staff import accounts as staff
from scheduler.usecases.staff.accounts import LoginRefused, StaffMember
from scheduler.web.api.public import problems
from scheduler.web.auth import (
    LOGIN_LIMIT,
    client_ip,
    presented_token,
    provide_staff,
    require_staff,
)
from scheduler.web.problems import problem_response


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, Meta(min_length=1, max_length=200)]
    password: Annotated[str, Meta(min_length=1, max_length=staff.MAX_PASSWORD_LENGTH)]


class StaffOut(msgspec.Struct):
    id: int
    username: str
    display_name: str
    role: str
    offices: list[str]


class LoginOut(msgspec.Struct):
    token: str
    token_type: str
    expires_at: datetime
    staff: StaffOut


def staff_out(member: StaffMember) -> StaffOut:
    return StaffOut(
        id=member.id,
        username=member.username,
        display_name=member.display_name,
        role=member.role,
        offices=list(member.office_codes),
    )


def login_refused(request: Request[Any, Any, Any], exc: LoginRefused) -> Response[Any]:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    minutes = -(-exc.retry_after // 60)
    return problem_response(request, exc.slug, status=exc.status, headers=headers, minutes=minutes)


class StaffApi(Controller):
    path = "/api/v1/staff"
    tags = ("staff",)
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute
    exception_handlers = {LoginRefused: login_refused}  # noqa: RUF012

    @post(
        "/login",
        summary="Sign in: a bearer token for the Authorization header",
        status_code=200,
        middleware=[LOGIN_LIMIT],
        responses=problems(401, 422, 429),
    )
    async def login(self, request: Request[Any, Any, Any], data: JSONBody[LoginIn]) -> LoginOut:
        signed = await staff.login(
            data.username,
            data.password,
            kind="bearer",
            ip=client_ip(request),
            now=utcnow(),
            settings=request.app.state.settings,
        )
        return LoginOut(signed.token, "bearer", signed.expires_at, staff_out(signed.member))

    @post(
        "/logout",
        summary="Sign out: the bearer token stops working",
        status_code=204,
        guards=[require_staff],
        responses=problems(401),
    )
    async def logout(self, request: Request[Any, Any, Any]) -> None:
        kind, token = presented_token(request) or ("bearer", "")
        await staff.logout(token, kind, ip=client_ip(request), now=utcnow())

    @get(
        "/me", summary="The signed-in staff member", guards=[require_staff], responses=problems(401)
    )
    async def me(self, member: NamedDependency[StaffMember]) -> StaffOut:
        return staff_out(member)
