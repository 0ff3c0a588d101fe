"""Admin API of the holiday calendar (issue 12): the notices in force per year, the
years the booking window reaches without one, and loading a new year's notice
(superadmin; preview first, then load with the preview's count of affected
appointments, so it is never one call that moves couples unseen)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.offices import holiday_notices
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin_types import HolidayLoadedOut, HolidayOverviewOut, HolidayPreviewOut
from scheduler.web.api.public import problems
from scheduler.web.auth import client_ip, provide_staff, requires_role


def _confirmed(data: dict[str, Any]) -> int | None:
    value = data.get("confirm_affected")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DomainError("invalid-input", field="confirm_affected", reason="required")
    return value


class HolidaysApi(Controller):
    path = "/api/v1/admin/holiday-notices"
    tags = ("admin",)
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @get(
        "/",
        summary="Holiday notices in force per year, their sources, and years missing one",
        responses=problems(401, 403),
    )
    async def overview(self) -> HolidayOverviewOut:
        return msgspec.convert(await holiday_notices.overview(utcnow()), HolidayOverviewOut)

    @post(
        "/preview",
        status_code=200,
        summary="What loading this notice would close, open and move (superadmin)",
        guards=[requires_role("superadmin")],
        responses=problems(401, 403, 422),
    )
    async def preview(self, data: JSONBody[dict[str, Any]]) -> HolidayPreviewOut:
        found = await holiday_notices.preview(data, now=utcnow())
        return msgspec.convert(found, HolidayPreviewOut)

    @post(
        "/",
        status_code=201,
        summary="Load a year's notice (superadmin): body {notice, confirm_affected}",
        guards=[requires_role("superadmin")],
        responses=problems(401, 403, 409, 422),
    )
    async def load(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[dict[str, Any]],
        member: NamedDependency[StaffMember],
    ) -> HolidayLoadedOut:
        loaded = await holiday_notices.load(
            data.get("notice"),
            confirm_affected=_confirmed(data),
            actor=member,
            now=utcnow(),
            settings=request.app.state.settings,
            ip=client_ip(request),
        )
        return msgspec.convert(loaded, HolidayLoadedOut)
