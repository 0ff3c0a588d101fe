"""Admin API of the reports and the audit log: the same figures as the pages, as JSON.

``from``/``to`` are office-local dates (default: the last 30 days), ``office`` may
repeat (default: every office of the admin). A bad range is 422 problem+json;
another office's code is 404, as for every office-scoped object.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from scheduler.domain.report_math import parse_range
from scheduler.kernel.clock import utcnow
from scheduler.usecases.reports import queries as reports
from scheduler.usecases.staff import audit_log
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin_types import AuditEntryOut, AuditPageOut, ReportOut
from scheduler.web.api.public import problems
from scheduler.web.auth import provide_staff, requires_role


def scope_of(member: StaffMember) -> frozenset[int] | None:
    return None if member.role == "superadmin" else member.offices


async def audit_query(
    request: Request[Any, Any, Any], member: StaffMember, tz: str
) -> audit_log.AuditQuery:
    """The audit filters of a request (pages and API): 422 for a bad range or page,
    404 for an office outside the reader's scope."""
    params = request.query_params
    start, end = parse_range(
        params.get("from"), params.get("to"), utcnow().astimezone(ZoneInfo(tz)).date()
    )
    office = None
    if params.get("office"):
        office = (await reports.resolve_offices(scope_of(member), [params["office"]]))[0].id
    page = params.get("page") or "1"
    return audit_log.AuditQuery(
        start=start,
        end=end,
        actor=(params.get("actor") or "").strip() or None,
        office=office,
        action=(params.get("action") or "").strip() or None,
        page=int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1,
    )


class ReportsApi(Controller):
    path = "/api/v1/admin"
    tags = ("admin",)
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @get(
        "/reports/{name:str}",
        summary="A report's tables (bookings, lead-time, cancellations, queue, sms, reschedule)",
        description="Query: from, to (YYYY-MM-DD, office-local, at most 366 days), office "
        "(repeatable code; default: every office of the admin).",
        responses=problems(401, 403, 404, 422),
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        member: NamedDependency[StaffMember],
    ) -> ReportOut:
        found = await reports.report(
            name,
            scope=scope_of(member),
            codes=request.query_params.getall("office", []),
            raw_from=request.query_params.get("from"),
            raw_to=request.query_params.get("to"),
            now=utcnow(),
            default_tz=request.app.state.settings.default_timezone,
        )
        return ReportOut(
            report=found.name,
            from_=found.start.isoformat(),
            to=found.end.isoformat(),
            offices=[o.code for o in found.offices],
            tables=found.tables,
        )

    @get(
        "/audit",
        summary="Audit log entries, newest first, 50 per page",
        description="Query: from, to (local dates), actor, office, action, page.",
        responses=problems(401, 403, 404, 422),
    )
    async def audit(
        self, request: Request[Any, Any, Any], member: NamedDependency[StaffMember]
    ) -> AuditPageOut:
        tz = request.app.state.settings.default_timezone
        query = await audit_query(request, member, tz)
        rows, total = await audit_log.search(query, scope_of(member), ZoneInfo(tz))
        return AuditPageOut(
            from_=query.start.isoformat(),
            to=query.end.isoformat(),
            page=query.page,
            page_size=audit_log.PAGE_SIZE,
            total=total,
            entries=msgspec.convert(rows, list[AuditEntryOut]),
        )
