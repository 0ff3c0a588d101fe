"""Clerk pages of the document pre-check: the day's pre-checks (masked), one
pre-check with its data and checklist, and the review form (CSRF-protected).

Like the other desk pages: another office's pages answer 404, anonymous visitors
go to the login page; a refused review is shown in place with its status code.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.db.records import OfficeRecord
from scheduler.domain.precheck import STATUSES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.desk import day_list as desk
from scheduler.usecases.desk import precheck
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api import desk as desk_api
from scheduler.web.auth import client_ip, login_redirect, provide_staff, requires_role
from scheduler.web.staff.desk_pages import error_text, no_store, today_of
from scheduler.web.staff.pages import field, label, render

BASE = "/staff/offices"
DateParam = Annotated[date | None, QueryParameter(name="date", required=False)]


class PrecheckPages(Controller):
    path = BASE
    include_in_schema = False
    guards = [requires_role("clerk")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    @get("/{office:str}/prechecks")
    async def day(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        date_: DateParam = None,
        status: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        row = await desk_api.scoped_office(office, member)
        day = date_ or today_of(row)
        # Without a filter the list shows what waits for a clerk: the submitted ones.
        chosen = "submitted" if status is None else status
        if chosen and chosen not in STATUSES:
            chosen = "submitted"
        rows = await precheck.office_list(row, day, chosen or None)
        others = [
            d
            for d in await desk.pending_prechecks_by_day(row, today_of(row))
            if d["date"] != day.isoformat()
        ]
        return render(
            request,
            "desk/prechecks.html",
            member=member,
            office=row,
            others=others,
            day=day,
            chosen=chosen,
            statuses=STATUSES,
            rows=rows,
            label=label,
        )

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        office: OfficeRecord,
        reference: str,
        *,
        error: str | None = None,
        note: str = "",
        status: int = 200,
        reviewed: bool = False,
    ) -> Template:
        now = utcnow()
        pre = await precheck.staff_view(office.id, reference, now=now)
        # Said as it is: sent, or held by the SMS quiet hours until a stated time.
        sms = (
            await desk.sms_state(office, reference, tuple(precheck.SMS_TEMPLATES.values()), now)
            if reviewed
            else None
        )
        page = render(
            request,
            "desk/precheck.html",
            status=status,
            member=member,
            office=office,
            pre=pre,
            error=error,
            note=note,
            reviewed=reviewed,
            sms=sms,
            label=label,
        )
        # Household-register addresses and occupations: never cached.
        return no_store(page)

    @get("/{office:str}/prechecks/{reference:str}")
    async def detail(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        reference: FromPath[str],
        done: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        row = await desk_api.scoped_office(office, member)
        return await self._detail(request, member, row, reference, reviewed=done == "1")

    @post("/{office:str}/prechecks/{reference:str}/review")
    async def review(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        office: FromPath[str],
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        row = await desk_api.scoped_office(office, member)
        version = field(data, "version")
        try:
            pre = await precheck.review(
                row.id,
                reference,
                field(data, "decision"),
                field(data, "note"),
                version=int(version) if version.isdigit() else None,
                actor=member,
                ip=client_ip(request),
                now=utcnow(),
                settings=request.app.state.settings,
            )
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            return await self._detail(
                request,
                member,
                row,
                reference,
                error=error_text(request, exc),
                note=field(data, "note"),
                status=exc.status,
            )
        return Redirect(
            f"{BASE}/{row.code}/prechecks/{pre['reference']}",
            status_code=303,
            query_params={"done": "1"},
        )
