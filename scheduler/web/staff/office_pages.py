"""Admin pages of offices, services, weekly opening rules and service suspensions
(issue 6). Forms are checked by the admin API's own schemas (same rules, same
messages); a refused change is shown in place with what was typed, and nothing
is stored. Admins see their offices only (others: 404), superadmins all and may
create offices; clerks 403; anonymous visitors go to the login page.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.domain.capacity_change import WEEKDAYS, hours_line, parse_hours_line
from scheduler.domain.services import SERVICES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.offices import offices, suspensions
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api import admin_offices as api
from scheduler.web.api.admin import scope_of
from scheduler.web.auth import login_redirect, provide_staff, requires_role
from scheduler.web.locale import request_locale
from scheduler.web.staff.admin_pages import error_message, offices_of, values
from scheduler.web.staff.pages import field, label, render

BASE = "/staff/admin/offices"
SUSPENSIONS = "/staff/admin/suspensions"
NOTICES = ("saved", "created", "lifted")
OFFICE_INPUTS = tuple(f for f in offices.OFFICE_FIELDS if f != "active")


def _convert(raw: dict[str, Any], kind: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        path = str(exc).rpartition("$.")[2].split(".")[0].split("[")[0] or "data"
        raise DomainError("invalid-input", field=path, reason="office-field") from exc


def office_form(form: dict[str, Any], *, with_code: bool) -> dict[str, Any]:
    """The office form as the API's change (blank numbers: unchanged)."""
    raw: dict[str, Any] = {k: field(form, k) for k in OFFICE_INPUTS if field(form, k) != ""}
    for k in ("address_zh", "address_en", "region"):
        raw.setdefault(k, "")
    raw["active"] = field(form, "active") == "on"
    if with_code:
        raw["code"] = field(form, "code")
    data = _convert(raw, api.OfficeNew if with_code else api.OfficeChange)
    return api.given(data)


def service_form(form: dict[str, Any]) -> dict[str, Any]:
    weekly: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        try:
            intervals = parse_hours_line(field(form, f"hours_{day}"))
        except ValueError as exc:
            raise DomainError("invalid-input", field="weekly_hours", reason="clock") from exc
        if intervals:
            weekly[day] = intervals
    raw = {
        "slot_minutes": field(form, "slot_minutes"),
        "slot_cap": field(form, "slot_cap"),
        "weekly_hours": weekly,
        "active": field(form, "active") == "on",
        "excess": "move" if field(form, "excess") == "move" else "refuse",
    }
    return api.given(_convert(raw, api.ServiceChange))


def hours_lines(weekly: dict[str, Any]) -> dict[str, str]:
    return {d: hours_line(weekly.get(d, [])) for d in WEEKDAYS}


class OfficePages(Controller):
    path = "/staff/admin"
    include_in_schema = False
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    async def _list(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        *,
        form: dict[str, Any] | None = None,
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Template:
        rows = await offices.listed(scope_of(member))
        listed = [offices.view(o, await offices.services_of(o["id"])) for o in rows]
        return render(
            request,
            "admin/offices/list.html",
            status=status,
            member=member,
            offices=listed,
            form=form or {"timezone": "Asia/Shanghai", "active": True},
            error=error,
            notice=notice if notice in NOTICES else None,
            label=label,
        )

    @get("/offices")
    async def list_page(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._list(request, member, notice=notice)

    @post("/offices", guards=[requires_role("superadmin")])
    async def create(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        try:
            values_ = office_form(data, with_code=True)
            code = values_.pop("code", "")
            await offices.create_office(
                code, values_, now=utcnow(), actor=member, scope=scope_of(member)
            )
        except DomainError as exc:
            typed = {k: field(data, k) for k in (*OFFICE_INPUTS, "code")}
            return await self._list(
                request,
                member,
                form=typed | {"active": field(data, "active") == "on"},
                error=error_message(request_locale(request), exc),
                status=exc.status,
            )
        return Redirect(
            f"{BASE}/{code.upper()}", status_code=303, query_params={"notice": "created"}
        )

    async def _edit(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        code: str,
        *,
        typed: dict[str, Any] | None = None,
        typed_service: tuple[str, dict[str, Any]] | None = None,
        error: str | None = None,
        error_at: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Template:
        office = await offices.office_for(code, scope_of(member))
        services = await offices.services_of(office["id"])
        forms = {
            s["service"]: {
                "slot_minutes": s["slot_minutes"],
                "slot_cap": s["slot_cap"],
                "active": s["active"],
                "hours": hours_lines(s["weekly_hours"] or {}),
            }
            for s in services
        }
        if typed_service is not None:
            forms[typed_service[0]] = typed_service[1]
        return render(
            request,
            "admin/offices/edit.html",
            status=status,
            member=member,
            office=office,
            form=typed or office,
            services=forms,
            addable=[s for s in SERVICES if s not in forms],
            weekdays=WEEKDAYS,
            error=error,
            error_at=error_at,
            notice=notice if notice in NOTICES else None,
            label=label,
        )

    @get("/offices/{code:str}")
    async def edit_page(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        code: FromPath[str],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._edit(request, member, code, notice=notice)

    @post("/offices/{code:str}")
    async def save_office(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        code: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        try:
            await offices.update_office(
                code,
                office_form(data, with_code=False),
                now=utcnow(),
                actor=member,
                scope=scope_of(member),
            )
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            typed = {k: field(data, k) for k in OFFICE_INPUTS} | {
                "active": field(data, "active") == "on"
            }
            return await self._edit(
                request,
                member,
                code,
                typed=typed,
                error=error_message(request_locale(request), exc),
                error_at="office",
                status=exc.status,
            )
        return Redirect(f"{BASE}/{code.upper()}", status_code=303, query_params={"notice": "saved"})

    @post("/offices/{code:str}/services/{service:str}")
    async def save_service(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        code: FromPath[str],
        service: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        try:
            changes = service_form(data)
            excess = changes.pop("excess", "refuse")
            await offices.save_service(
                code,
                service,
                changes,
                now=utcnow(),
                actor=member,
                scope=scope_of(member),
                settings=request.app.state.settings,
                excess=excess,
            )
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            typed = {
                "slot_minutes": field(data, "slot_minutes"),
                "slot_cap": field(data, "slot_cap"),
                "active": field(data, "active") == "on",
                "hours": {d: field(data, f"hours_{d}") for d in WEEKDAYS},
            }
            return await self._edit(
                request,
                member,
                code,
                typed_service=(service, typed) if service in SERVICES else None,
                error=error_message(request_locale(request), exc),
                error_at=service,
                status=exc.status,
            )
        return Redirect(f"{BASE}/{code.upper()}", status_code=303, query_params={"notice": "saved"})

    async def _suspensions(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        *,
        form: dict[str, Any] | None = None,
        error: str | None = None,
        notice: str | None = None,
        count: int = 0,
        status: int = 200,
    ) -> Template:
        return render(
            request,
            "admin/offices/suspensions.html",
            status=status,
            member=member,
            offices=await offices_of(member),
            suspensions=await suspensions.listed(scope_of(member)),
            services=SERVICES,
            form=form or {"offices": list(member.office_codes)},
            error=error,
            notice=notice,
            count=count,
            label=label,
        )

    @get("/suspensions")
    async def suspensions_page(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        notice: FromQuery[str | None] = None,
        count: FromQuery[int] = 0,
    ) -> Template:
        shown = notice if notice in ("suspended", "lifted") else None
        return await self._suspensions(request, member, notice=shown, count=count)

    @post("/suspensions")
    async def suspend(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        raw = {
            "offices": values(data, "offices"),
            "service": field(data, "service"),
            "start_date": field(data, "start_date"),
            "end_date": field(data, "end_date") or field(data, "start_date"),
            "reason": {"zh-Hans": field(data, "reason_zh"), "en": field(data, "reason_en")},
        }
        try:
            parsed = _convert(raw, api.SuspensionIn)
            done = await suspensions.suspend(
                api.suspension(parsed),
                now=utcnow(),
                actor=member,
                scope=scope_of(member),
                settings=request.app.state.settings,
            )
        except DomainError as exc:
            typed: dict[str, Any] = {
                k: field(data, k) for k in ("service", "start_date", "end_date")
            }
            typed |= {
                "offices": values(data, "offices"),
                "reason_zh": field(data, "reason_zh"),
                "reason_en": field(data, "reason_en"),
            }
            return await self._suspensions(
                request,
                member,
                form=typed,
                error=error_message(request_locale(request), exc),
                status=exc.status,
            )
        return Redirect(
            SUSPENSIONS,
            status_code=303,
            query_params={"notice": "suspended", "count": str(done["notified"])},
        )

    @post("/suspensions/{suspension_id:int}/lift")
    async def lift(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        suspension_id: FromPath[int],
    ) -> Response[Any]:
        try:
            await suspensions.lift(
                suspension_id, now=utcnow(), actor=member, scope=scope_of(member)
            )
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            return await self._suspensions(
                request,
                member,
                error=error_message(request_locale(request), exc),
                status=exc.status,
            )
        return Redirect(SUSPENSIONS, status_code=303, query_params={"notice": "lifted"})
