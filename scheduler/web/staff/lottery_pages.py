"""Admin pages of the hot-date lotteries (issue 7): the list with the form to put a
date in lottery mode (the hot-date calendar suggests dates), one lottery's page,
cancel. Same guards, scope and input rules as the admin API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.domain.hotdates import hot_dates
from scheduler.domain.services import SERVICES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.usecases.lottery import dates as lottery_admin
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api import lottery as lottery_api
from scheduler.web.api.admin import scope_of
from scheduler.web.auth import client_ip, login_redirect, provide_staff, requires_role
from scheduler.web.locale import request_locale
from scheduler.web.staff.admin_pages import offices_of, values
from scheduler.web.staff.pages import field, label, render

BASE = "/staff/admin/lotteries"
NOTICES = ("created", "cancelled")
FIELDS = (
    "date",
    "service",
    "opens_days_before",
    "opens_at",
    "closes_days_before",
    "closes_at",
    "confirm_hours",
)
DEFAULTS = {
    "service": "marriage",
    "opens_days_before": "14",
    "opens_at": "09:00",
    "closes_days_before": "7",
    "closes_at": "09:00",
    "confirm_hours": "48",
}
SUGGESTED = 8


def parse(form: dict[str, Any]) -> lottery_api.LotteryIn:
    # A field left empty takes the API's default (as a JSON body without it would).
    raw: dict[str, Any] = {k: v for k in FIELDS if (v := field(form, k))}
    raw["offices"] = values(form, "offices")
    try:
        return msgspec.convert(raw, lottery_api.LotteryIn, strict=False)
    except msgspec.ValidationError as exc:
        path = str(exc).rpartition("$.")[2].strip("`").split(".")[0].split("[")[0] or "data"
        raise DomainError("invalid-input", field=path) from exc


def message(locale: str, exc: DomainError) -> str:
    if exc.slug == "not-found":
        return translate(locale, "admin.error.scope")
    text = translate(locale, exc.key, **exc.params)
    if exc.slug == "invalid-input" and exc.field:
        text += " " + translate(
            locale, "admin.error.field", field=translate(locale, f"lottery.admin.field.{exc.field}")
        )
    return text


class LotteryAdminPages(Controller):
    path = BASE
    include_in_schema = False
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    async def _page(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        form: dict[str, Any],
        *,
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Template:
        settings = request.app.state.settings
        today = utcnow().astimezone(ZoneInfo(settings.default_timezone)).date()
        suggested = hot_dates(today + timedelta(days=8), today + timedelta(days=366))
        return render(
            request,
            "admin/lotteries.html",
            status=status,
            member=member,
            form=form,
            offices=await offices_of(member),
            lotteries=await lottery_admin.listing(scope_of(member)),
            suggested=suggested[:SUGGESTED],
            services=SERVICES,
            error=error,
            notice=notice,
            label=label,
        )

    @get("/")
    async def index(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        date_: Annotated[str | None, QueryParameter(name="date", required=False)] = None,
        notice: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        form: dict[str, Any] = DEFAULTS | {"offices": list(member.office_codes)}
        try:
            form["date"] = date.fromisoformat(date_).isoformat() if date_ else ""
        except ValueError:
            form["date"] = ""
        shown = notice if notice in NOTICES else None
        return await self._page(request, member, form, notice=shown)

    @post("/")
    async def create(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        try:
            view = await lottery_admin.create(
                lottery_api.lottery_input(parse(data)),
                now=utcnow(),
                actor=member,
                scope=scope_of(member),
                ip=client_ip(request),
            )
        except DomainError as exc:
            form = {k: field(data, k) for k in FIELDS} | {"offices": values(data, "offices")}
            text = message(request_locale(request), exc)
            return await self._page(request, member, form, error=text, status=exc.status)
        return Redirect(f"{BASE}/{view['id']}", status_code=303, query_params={"notice": "created"})

    @get("/{lottery_id:int}")
    async def one(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        lottery_id: FromPath[int],
        notice: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        view = await lottery_admin.admin_view(lottery_id, scope_of(member))
        return render(
            request,
            "admin/lottery.html",
            member=member,
            lottery=view,
            notice=notice if notice in NOTICES else None,
            label=label,
        )

    @post("/{lottery_id:int}/cancel")
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        lottery_id: FromPath[int],
    ) -> Response[Any]:
        try:
            await lottery_admin.cancel(
                lottery_id,
                now=utcnow(),
                actor=member,
                scope=scope_of(member),
                ip=client_ip(request),
            )
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            view = await lottery_admin.admin_view(lottery_id, scope_of(member))
            return render(
                request,
                "admin/lottery.html",
                status=exc.status,
                member=member,
                lottery=view,
                error=message(request_locale(request), exc),
                label=label,
            )
        return Redirect(
            f"{BASE}/{lottery_id}", status_code=303, query_params={"notice": "cancelled"}
        )
