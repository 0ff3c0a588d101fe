"""Admin pages of the reports (charts, tables, CSV) and of the audit log.

Role admin or higher (clerks: 403; anonymous visitors: the login page, like every
staff page); an admin sees their offices, a superadmin all. Filters are a GET form,
so every view is a link that can be shared or bookmarked; ``?format=csv`` (with
``table=`` on reports) downloads the table on screen.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath
from litestar.response import Redirect

from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.usecases.reports import queries as reports
from scheduler.usecases.reports import views as report_views
from scheduler.usecases.staff import audit_log
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.reports import audit_query, scope_of
from scheduler.web.auth import login_redirect, provide_staff, requires_role
from scheduler.web.locale import request_locale
from scheduler.web.staff.pages import render

BASE = "/staff/admin"
CSV = "text/csv"  # Litestar adds "; charset=utf-8"


def csv_response(content: bytes, filename: str) -> Response[bytes]:
    return Response(
        content,
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _filters(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What the filter form shows again (as typed)."""
    params = request.query_params
    return {
        "from": params.get("from") or "",
        "to": params.get("to") or "",
        "office": params.getall("office", []),
        "actor": params.get("actor") or "",
        "action": params.get("action") or "",
    }


def _link(request: Request[Any, Any, Any], **changes: str) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v]
    return request.url.path + ("?" + urlencode(pairs) if pairs else "")


class ReportPages(Controller):
    path = BASE
    include_in_schema = False
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    @get("/reports")
    async def index(self, request: Request[Any, Any, Any]) -> Redirect:
        query = request.url.query
        return Redirect(
            f"{BASE}/reports/bookings" + (f"?{query}" if query else ""), status_code=303
        )

    @get("/reports/{name:str}")
    async def report(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        name: FromPath[str],
    ) -> Response[Any]:
        locale = request_locale(request)
        if name not in reports.REPORTS:
            raise DomainError("not-found")
        visible = await reports.resolve_offices(scope_of(member), [])
        try:
            found = await reports.report(
                name,
                scope=scope_of(member),
                codes=request.query_params.getall("office", []),
                raw_from=request.query_params.get("from"),
                raw_to=request.query_params.get("to"),
                now=utcnow(),
                default_tz=request.app.state.settings.default_timezone,
            )
        except DomainError as exc:
            if exc.slug != "invalid-input":
                raise
            return render(
                request,
                "admin/reports.html",
                status=exc.status,
                member=member,
                name=name,
                names=reports.REPORTS,
                visible=visible,
                filters=_filters(request),
                error=translate(locale, exc.key, **exc.params),
                report=None,
            )
        table = request.query_params.get("table")
        if request.query_params.get("format") == "csv":
            if table not in report_views.COLUMNS[name]:
                raise DomainError("not-found")
            return csv_response(
                report_views.csv_file(locale, name, table, found.tables[table]),
                f"{name}-{table}_{found.start.isoformat()}_{found.end.isoformat()}.csv",
            )
        codes = [o.code for o in found.offices]
        return render(
            request,
            "admin/reports.html",
            member=member,
            name=name,
            names=reports.REPORTS,
            visible=visible,
            filters=_filters(request)
            | {"from": found.start.isoformat(), "to": found.end.isoformat()},
            # No dates asked for: the window around today, said in words.
            default_window=not (request.query_params.get("from") or request.query_params.get("to")),
            error=None,
            report=found,
            charts=report_views.charts(locale, name, found.tables, found.start, found.end, codes),
            tables=[
                {
                    "id": t,
                    "header": report_views.header(locale, name, t),
                    "rows": report_views.cells(locale, name, t, found.tables[t]),
                    "csv": _link(request, format="csv", table=t, lang=""),
                }
                for t in report_views.COLUMNS[name]
            ],
        )

    @get("/audit")
    async def audit(
        self, request: Request[Any, Any, Any], member: NamedDependency[StaffMember]
    ) -> Response[Any]:
        locale = request_locale(request)
        tz_name = request.app.state.settings.default_timezone
        tz = ZoneInfo(tz_name)
        scope = scope_of(member)
        visible = await reports.resolve_offices(scope, [])
        context: dict[str, Any] = {
            "member": member,
            "visible": visible,
            "choices": await audit_log.choices(scope),
            "filters": _filters(request),
        }
        try:
            query = await audit_query(request, member, tz_name)
        except DomainError as exc:
            if exc.slug != "invalid-input":
                raise
            error = translate(locale, exc.key, **exc.params)
            return render(request, "admin/audit.html", status=exc.status, error=error, **context)
        if request.query_params.get("format") == "csv":
            header = [translate(locale, f"reports.audit.col.{c}") for c in audit_log.CSV_COLUMNS]
            return csv_response(
                await audit_log.export(query, scope, tz, header),
                f"audit_{query.start.isoformat()}_{query.end.isoformat()}.csv",
            )
        rows, total = await audit_log.search(query, scope, tz)
        pages = max(1, -(-total // audit_log.PAGE_SIZE))
        context["filters"] |= {"from": query.start.isoformat(), "to": query.end.isoformat()}
        return render(
            request,
            "admin/audit.html",
            error=None,
            rows=rows,
            total=total,
            page=query.page,
            pages=pages,
            prev=_link(request, page=str(query.page - 1)) if query.page > 1 else None,
            next=_link(request, page=str(query.page + 1)) if query.page < pages else None,
            csv=_link(request, format="csv", page="", lang=""),
            **context,
        )
