"""Admin pages (issue 5): declare blackouts (preview first), lift them, follow a
reschedule run live, and the hot-date calendar.

Role admin or higher (clerks: 403; anonymous: the login page). Admins act on their
offices only (the use cases answer 404 for others); a superadmin on all. The form
is checked by the admin API's own schema, so pages and API accept the same input.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.db.blackout_tables import Blackout, RescheduleRun
from scheduler.domain.hotdates import HotDate, hot_dates, is_hot
from scheduler.domain.services import SERVICES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.usecases.calendar.slots import OfficeListing, list_offices
from scheduler.usecases.offices import blackouts
from scheduler.usecases.staff.accounts import StaffMember

# A module reference, not names: scheduler.web.api.admin imports scheduler.web.staff
# (for its guards), whose package imports this module.
from scheduler.web.api import admin as admin_api
from scheduler.web.auth import login_redirect, provide_staff, requires_role
from scheduler.web.locale import request_locale
from scheduler.web.staff.pages import field, label, render

BASE = "/staff/admin"
KINDS = ("closed", "no_new_bookings", "discouraged")
NOTICES = ("declared", "lifted")
LISTED_BLACKOUTS = 50


def values(form: dict[str, Any], key: str) -> list[str]:
    raw = form.get(key, [])
    return [str(v).strip() for v in (raw if isinstance(raw, list) else [raw]) if str(v).strip()]


SCOPES = ("offices", "region", "all")
# Errors of the confirmation step: the preview is shown again with the message.
CONFIRM_ERRORS = ("preview-required", "preview-mismatch", "preview-expired")


def parse_declaration(form: dict[str, Any]) -> admin_api.BlackoutIn:
    """The declaration form as the admin API's input (same rules, same messages).
    The scope is chosen, never assumed, and never silently narrowed or widened:
    offices ticked under "all" or "region" is a contradiction, said in place."""
    scope = field(form, "scope")
    picked = values(form, "offices")
    if scope not in SCOPES:
        raise DomainError("invalid-input", field="scope", reason="scope-required")
    if scope != "offices" and picked:
        raise DomainError("invalid-input", field="scope", reason="scope-conflict")
    if scope == "region" and not field(form, "region"):
        raise DomainError("invalid-input", field="region", reason="region-required")
    if scope == "offices" and not picked:
        raise DomainError("invalid-input", field="offices", reason="unknown-office")
    raw: dict[str, Any] = {
        "offices": picked if scope == "offices" else "all",
        "region": field(form, "region") or None if scope == "region" else None,
        "start_date": field(form, "start_date"),
        "end_date": field(form, "end_date") or field(form, "start_date"),
        "kind": field(form, "kind"),
        "start_time": field(form, "start_time") or None,
        "end_time": field(form, "end_time") or None,
        "services": values(form, "services"),
        "reason": {
            "zh-Hans": field(form, "reason_zh"),
            "zh-Hant": field(form, "reason_zh_hant"),
            "en": field(form, "reason_en"),
        },
        "cap_percent": field(form, "cap_percent") or "50",
        "allow_other_office": field(form, "allow_other_office") == "on",
    }
    try:
        return msgspec.convert(raw, admin_api.BlackoutIn, strict=False)
    except msgspec.ValidationError as exc:
        path = str(exc).rpartition("$.")[2].split(".")[0].split("[")[0] or "data"
        reason = "reason-required" if path == "reason" else None
        raise DomainError("invalid-input", field=path, reason=reason) from exc


FORM_KEYS = (
    "scope",
    "region",
    "start_date",
    "end_date",
    "kind",
    "start_time",
    "end_time",
    "reason_zh",
    "reason_zh_hant",
    "reason_en",
    "cap_percent",
)


def form_values(form: dict[str, Any]) -> dict[str, Any]:
    """What the admin typed, to fill the form again (and the confirmation's hidden copy)."""
    return {k: field(form, k) for k in FORM_KEYS} | {
        "offices": values(form, "offices"),
        "services": values(form, "services"),
        "allow_other_office": field(form, "allow_other_office") == "on",
    }


def error_message(locale: str, exc: DomainError) -> str:
    if exc.slug == "not-found":
        return translate(locale, "admin.error.scope")
    text = translate(locale, exc.key, **exc.params)
    name = translate(locale, f"admin.field.{exc.field}")
    if exc.slug == "invalid-input" and name != f"admin.field.{exc.field}":
        text += " " + translate(locale, "admin.error.field", field=name)
    return text


async def offices_of(member: StaffMember) -> list[OfficeListing]:
    return [
        o
        for o in await list_offices()
        if member.role == "superadmin" or o["code"] in member.office_codes
    ]


async def blackout_list(member: StaffMember) -> list[dict[str, Any]]:
    """Recent blackouts touching the member's offices, with their runs."""
    ids = [
        r["id"]
        for r in await Blackout.select(Blackout.id)
        .order_by(Blackout.id, ascending=False)
        .limit(LISTED_BLACKOUTS)
    ]
    runs = {
        r["blackout"]: r
        for r in await RescheduleRun.select(
            RescheduleRun.id, RescheduleRun.blackout, RescheduleRun.status
        ).where(RescheduleRun.blackout.is_in(ids or [-1]))
    }
    mine = set(member.office_codes)
    listed = []
    for blackout_id in ids:
        view = await blackouts.view(blackout_id)
        if member.role != "superadmin" and not mine & set(view["offices"]):
            continue
        liftable = member.role == "superadmin" or set(view["offices"]) <= mine
        listed.append(view | {"run": runs.get(blackout_id), "liftable": liftable})
    return listed


async def lift_page(
    request: Request[Any, Any, Any], member: StaffMember, blackout_id: int
) -> Template:
    blackout = await blackouts.view(blackout_id, admin_api.scope_of(member))
    return render(request, "admin/lift.html", member=member, blackout=blackout, label=label)


async def visible_run(run_id: int, member: StaffMember) -> dict[str, Any]:
    """The run's progress, if it touches one of the member's offices (else 404)."""
    scope = None if member.role == "superadmin" else member.offices
    return await blackouts.progress(run_id, scope)


class AdminPages(Controller):
    path = BASE
    include_in_schema = False
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    @get("/")
    async def index(self) -> Redirect:
        return Redirect(f"{BASE}/blackouts", status_code=303)

    async def _blackouts_page(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        form: dict[str, Any],
        *,
        preview: dict[str, Any] | None = None,
        error: str | None = None,
        error_field: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Template:
        return render(
            request,
            "admin/blackouts.html",
            status=status,
            member=member,
            form=form,
            offices=await offices_of(member),
            blackouts=await blackout_list(member),
            preview=preview,
            error=error,
            error_field=error_field,
            notice=notice,
            kinds=KINDS,
            services=SERVICES,
            label=label,
        )

    @get("/blackouts")
    async def blackouts_page(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        date_: Annotated[str | None, QueryParameter(name="date", required=False)] = None,
        kind: FromQuery[str | None] = None,
        notice: FromQuery[str | None] = None,
    ) -> Template:
        # No scope is chosen for the admin: "all offices" is never one click away.
        form: dict[str, Any] = {
            "scope": "",
            "offices": [],
            "kind": kind if kind in KINDS else "closed",
            "cap_percent": "50",
        }
        hot = _hot_date(date_)
        if hot is not None:
            form |= {
                "start_date": hot.day.isoformat(),
                "end_date": hot.day.isoformat(),
                "reason_zh": translate("zh-Hans", "admin.hot.reason", label=hot.label_zh),
                "reason_en": translate("en", "admin.hot.reason", label=hot.label_en),
            }
        elif date_:
            form |= {"start_date": date_, "end_date": date_}
        shown = notice if notice in NOTICES else None
        return await self._blackouts_page(request, member, form, notice=shown)

    @post("/blackouts")
    async def declare(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        """ "preview": the figures and the confirmation step; "declare" (only from
        that step): the preview's token and, over several offices, their number typed."""
        locale = request_locale(request)
        typed = form_values(data)
        try:
            decl = admin_api.declaration(parse_declaration(data))
            if field(data, "action") != "declare":
                return await self._preview(request, member, decl, typed)
            codes = await blackouts.scope_offices(decl, admin_api.scope_of(member))
            if len(codes) > 1 and field(data, "confirm_offices") != str(len(codes)):
                raise DomainError(
                    "invalid-input",
                    field="confirm_offices",
                    reason="confirm-offices",
                    count=len(codes),
                )
            result = await blackouts.declare(
                decl,
                now=utcnow(),
                actor=member,
                scope=admin_api.scope_of(member),
                dry_run=False,
                settings=request.app.state.settings,
                preview_token=field(data, "preview_token") or None,
                preview_required_over=0,
            )
        except DomainError as exc:
            message = error_message(locale, exc)
            if exc.slug in CONFIRM_ERRORS or exc.field == "confirm_offices":
                try:  # the confirmation again, with fresh figures and token
                    return await self._preview(
                        request, member, decl, typed, error=message, status=exc.status
                    )
                except DomainError:
                    pass
            return await self._blackouts_page(
                request, member, typed, error=message, error_field=exc.field, status=exc.status
            )
        if result["run"] is not None:
            return Redirect(f"{BASE}/runs/{result['run']['id']}", status_code=303)
        return Redirect(f"{BASE}/blackouts", status_code=303, query_params={"notice": "declared"})

    async def _preview(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        decl: blackouts.Declaration,
        typed: dict[str, Any],
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        result = await blackouts.declare(
            decl,
            now=utcnow(),
            actor=member,
            scope=admin_api.scope_of(member),
            dry_run=True,
            settings=request.app.state.settings,
        )
        return await self._blackouts_page(
            request,
            member,
            typed,
            preview=result["preview"] | {"token": result["preview_token"]},
            error=error,
            error_field="confirm_offices" if error else None,
            status=status,
        )

    @get("/blackouts/{blackout_id:int}/lift")
    async def lift_confirm(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        blackout_id: FromPath[int],
    ) -> Template:
        """What lifting reopens, and the one button that does it."""
        return await lift_page(request, member, blackout_id)

    @post("/blackouts/{blackout_id:int}/lift")
    async def lift(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        blackout_id: FromPath[int],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        if field(data, "confirm") != "yes":  # not from the confirmation page: show it
            return await lift_page(request, member, blackout_id)
        try:
            await blackouts.lift(
                blackout_id, now=utcnow(), actor=member, scope=admin_api.scope_of(member)
            )
        except DomainError as exc:
            message = error_message(request_locale(request), exc)
            return await self._blackouts_page(request, member, {}, error=message, status=exc.status)
        return Redirect(f"{BASE}/blackouts", status_code=303, query_params={"notice": "lifted"})

    @get("/runs/{run_id:int}")
    async def run(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        run_id: FromPath[int],
    ) -> Template:
        progress = await visible_run(run_id, member)
        blackout = await blackouts.view(progress["blackout"])
        return render(
            request, "admin/run.html", member=member, run=progress, blackout=blackout, label=label
        )

    @get("/runs/{run_id:int}/progress")
    async def run_progress(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        run_id: FromPath[int],
    ) -> Template:
        """The progress bar alone: the run page polls it every second."""
        progress = await visible_run(run_id, member)
        return render(request, "admin/_progress.html", run=progress)

    @get("/hot-dates")
    async def hot(
        self, request: Request[Any, Any, Any], member: NamedDependency[StaffMember]
    ) -> Template:
        today = utcnow().astimezone(ZoneInfo(request.app.state.settings.default_timezone)).date()
        last = _add_months(today, 12) - timedelta(days=1)
        return render(
            request,
            "admin/hot_dates.html",
            member=member,
            months=_by_month(today, last),
            first=today,
            last=last,
        )


def _by_month(first: date, last: date) -> dict[str, list[HotDate]]:
    """Hot dates per month, every month of the range, the quiet ones too (a calendar)."""
    months: dict[str, list[HotDate]] = {}
    month = first.replace(day=1)
    while month <= last:
        months[f"{month:%Y-%m}"] = []
        month = _add_months(month, 1)
    for hot in hot_dates(first, last):
        months[f"{hot.day:%Y-%m}"].append(hot)
    return months


def _hot_date(raw: str | None) -> HotDate | None:
    try:
        return is_hot(date.fromisoformat(raw)) if raw else None
    except ValueError:
        return None


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")
