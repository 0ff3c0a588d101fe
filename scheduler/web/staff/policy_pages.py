"""Admin pages of the policies (issue 6.3) and the no-show bans (issue 4.8).

Role admin or higher sees them (clerks: 403; anonymous: the login page). Policies
are system-wide: admins read them, a superadmin edits them (the form is shown
read-only to admins and its POST answers 403). Bans are office-scoped like the
API's. A form is turned into the same JSON value the API takes and checked by the
same rules (scheduler/domain/policy.py), so pages and API refuse the same input.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.domain.identity import ID_TYPES
from scheduler.domain.services import SERVICES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.usecases.policy import bans, policies
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin import scope_of
from scheduler.web.auth import client_ip, login_redirect, provide_staff, requires_role
from scheduler.web.locale import request_locale
from scheduler.web.staff.admin_pages import values
from scheduler.web.staff.pages import field, label, render

BASE = "/staff/admin"
NOTICES = ("saved", "lifted")
COUNTRY_ROWS_FREE = 2  # empty rows under the existing countries, to add one


def _number(raw: str) -> Any:
    """An integer or a decimal as typed; anything else stays text (the rule refuses it)."""
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw


def form_to_value(name: str, form: dict[str, Any]) -> dict[str, Any]:
    """The policy's JSON value from its form (unchecked: policies.parse checks it)."""
    on = field(form, "enabled") == "on"
    if name == "no_show":
        keys = ("no_shows", "cancellations", "window_days", "ban_days")
        return {"enabled": on} | {k: _number(field(form, k)) for k in keys}
    if name == "id_types":
        by_service = {
            s: values(form, f"types_{s}") for s in SERVICES if field(form, f"own_{s}") == "on"
        }
        return {"accepted": values(form, "accepted"), "by_service": by_service}
    if name == "sms_quiet_hours":
        return {"enabled": on, "start": field(form, "start"), "end": field(form, "end")}
    if name == "sms_rate":
        return {"per_second": _number(field(form, "per_second"))}
    countries = {}
    for index in range(int(field(form, "rows") or 0) if field(form, "rows").isdigit() else 0):
        code = field(form, f"code_{index}").lstrip("+")
        if code:
            countries[code] = _rule(form, str(index))
    regions = _regions(field(form, "booking_regions"))
    return {
        "default": _rule(form, "default"),
        "countries": countries,
        # Left empty: the default list (CN HK MO TW), as for a value stored without it.
        **({"booking_regions": regions} if regions else {}),
        "office_regions": {
            code.strip().upper(): _regions(listed)
            for code, _, listed in (
                line.partition(":") for line in field(form, "office_regions").splitlines()
            )
            if code.strip()
        },
    }


def _regions(text: str) -> list[str]:
    """``CN HK, mo`` -> ["CN", "HK", "MO"] (checked by the policy's own rules)."""
    return text.replace(",", " ").replace("，", " ").upper().split()


def _rule(form: dict[str, Any], suffix: str) -> dict[str, Any]:
    return {
        "signature": field(form, f"signature_{suffix}"),
        "allow_urls": field(form, f"allow_urls_{suffix}") == "on",
        "max_segments": _number(field(form, f"max_segments_{suffix}")),
    }


def error_text(locale: str, exc: DomainError) -> str:
    text = translate(locale, exc.key, **exc.params)
    if exc.field:
        text += " " + translate(locale, "policy.error.field", field=exc.field)
    return text


class PolicyPages(Controller):
    path = BASE
    include_in_schema = False
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    @get("/policies")
    async def index(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return render(
            request,
            "admin/policies.html",
            member=member,
            policies=await policies.view_all(request.app.state.settings),
            notice=notice if notice in NOTICES else None,
        )

    async def _form(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        name: str,
        value: dict[str, Any] | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        current = await policies.view(name, request.app.state.settings)
        shown = value if value is not None else current["value"]
        rows = []
        if name == "sms_countries":
            rows = [{"code": c, **r} for c, r in shown.get("countries", {}).items()]
            rows += [{"code": "", "signature": "", "allow_urls": True, "max_segments": 2}] * (
                COUNTRY_ROWS_FREE
            )
        return render(
            request,
            "admin/policy.html",
            status=status,
            member=member,
            policy=current,
            value=shown,
            rows=rows,
            error=error,
            editable=member.role == "superadmin",
            id_types=ID_TYPES,
            services=SERVICES,
            label=label,
        )

    @get("/policies/{name:str}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        name: FromPath[str],
    ) -> Template:
        return await self._form(request, member, name)

    @post("/policies/{name:str}", guards=[requires_role("superadmin")])
    async def save(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        name: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        if name not in policies.NAMES:
            raise DomainError("not-found")
        value = form_to_value(name, data)
        try:
            await policies.update(
                name,
                value,
                actor=member,
                now=utcnow(),
                settings=request.app.state.settings,
                ip=client_ip(request),
            )
        except DomainError as exc:
            message = error_text(request_locale(request), exc)
            return await self._form(request, member, name, value, message, exc.status)
        return Redirect(f"{BASE}/policies", status_code=303, query_params={"notice": "saved"})

    @get("/bans")
    async def bans_page(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._bans(request, member, notice if notice in NOTICES else None)

    async def _bans(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        return render(
            request,
            "admin/bans.html",
            status=status,
            member=member,
            bans=await bans.current_bans(scope_of(member), utcnow()),
            notice=notice,
            error=error,
        )

    @post("/bans/{ban_id:int}/lift")
    async def lift(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        ban_id: FromPath[int],
    ) -> Response[Any]:
        try:
            await bans.lift(
                ban_id, scope=scope_of(member), actor=member, now=utcnow(), ip=client_ip(request)
            )
        except DomainError as exc:
            if exc.status == 404:
                raise
            message = translate(request_locale(request), exc.key, **exc.params)
            return await self._bans(request, member, error=message, status=exc.status)
        return Redirect(f"{BASE}/bans", status_code=303, query_params={"notice": "lifted"})
