"""Admin page of the registration rule sets (issue 12): every version, what the one
in force asks per service and party kind, the designated offices; a superadmin adds
a version (the same JSON and checks as the API). Adding destroys nothing: the
earlier versions keep applying to their days."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.domain.rules import KINDS
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.policy import rules
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.auth import client_ip, login_redirect, provide_staff, requires_role
from scheduler.web.locale import request_locale
from scheduler.web.staff.pages import field, render
from scheduler.web.staff.policy_pages import error_text

PATH = "/staff/admin/rules"
SERVICES = ("marriage", "divorce", "reissue", "ceremony")


class RulePages(Controller):
    path = PATH
    include_in_schema = False
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    async def _page(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        *,
        typed: str | None = None,
        error: str | None = None,
        status: int = 200,
        notice: str | None = None,
    ) -> Template:
        now = utcnow()
        listed = await rules.listed(now)
        current = next(v for v in listed["versions"] if v["effective_from"] == listed["in_force"])
        rule_set = await rules.for_day(date.fromisoformat(listed["in_force"]))
        return render(
            request,
            "admin/rules.html",
            status=status,
            member=member,
            listed=listed,
            current=current,
            rule_set=rule_set,
            services=[s for s in SERVICES if s in rule_set.checklists],
            kinds=KINDS,
            designated_offices=await rules.designated_offices("marriage"),
            typed=typed
            if typed is not None
            else json.dumps(current["body"], ensure_ascii=False, indent=2),
            error=error,
            notice=notice,
            editable=member.role == "superadmin",
        )

    @get("/")
    async def index(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._page(request, member, notice="added" if notice == "added" else None)

    @post("/", guards=[requires_role("superadmin")])
    async def add(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        typed = field(data, "document")
        try:
            try:
                doc = json.loads(typed)
            except ValueError as exc:
                raise DomainError("invalid-input", field="document", reason="rule-set") from exc
            if not isinstance(doc, dict):
                raise DomainError("invalid-input", field="document", reason="rule-set")
            await rules.add_version(doc, member, ip=client_ip(request), now=utcnow())
        except DomainError as exc:
            message = error_text(request_locale(request), exc)
            return await self._page(request, member, typed=typed, error=message, status=exc.status)
        return Redirect(PATH, status_code=303, query_params={"notice": "added"})
