"""Admin page of the holiday calendar (issue 12): the notices in force, the years
missing one, and (superadmins) loading a year's notice in two steps: the form
goes to a preview of what closes, opens and moves; only the preview's form,
with its confirmation ticked, loads it (never one click). Admins read; clerks 403.
The form becomes the same notice value the API takes, checked by the same rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.usecases.calendar import holidays as holiday_calendar
from scheduler.usecases.offices import holiday_notices
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.auth import client_ip, login_redirect, provide_staff, requires_role
from scheduler.web.locale import request_locale
from scheduler.web.staff.pages import field, render
from scheduler.web.staff.policy_pages import error_text

PAGE = "/staff/admin/holidays"
_DATES = re.compile(r"[\s,，、;；]+")


def form_to_notice(form: dict[str, Any]) -> dict[str, Any]:
    """The notice value from the form (unchecked). Holidays given the same dates
    share one block (国庆节、中秋节 2025)."""
    blocks: dict[tuple[str, str], dict[str, Any]] = {}
    for key in holiday_calendar.statutory_rules().keys:
        start = field(form, f"{key}_from")
        end = field(form, f"{key}_to") or start
        block = blocks.setdefault(
            (start, end), {"holidays": [], "from": start, "to": end, "makeup": []}
        )
        block["holidays"].append(key)
        block["makeup"] += [d for d in _DATES.split(field(form, f"{key}_makeup")) if d]
    year = field(form, "year")
    return {
        "year": int(year) if year.isdigit() and len(year) <= 4 else year,
        "title": field(form, "title"),
        "document_number": field(form, "document_number"),
        "published_on": field(form, "published_on"),
        "url": field(form, "url"),
        "blocks": list(blocks.values()),
    }


def _notice_to_form(notice: dict[str, Any]) -> dict[str, str]:
    """The form's fields from a notice value (a preview sent back to be changed)."""
    keys = ("year", "title", "document_number", "url", "published_on")
    form = {k: str(notice.get(k, "")) for k in keys}
    try:
        for block in notice.get("blocks", []):
            for key in block["holidays"]:
                form[f"{key}_from"], form[f"{key}_to"] = str(block["from"]), str(block["to"])
                first = key == block["holidays"][0]
                form[f"{key}_makeup"] = " ".join(map(str, block["makeup"])) if first else ""
    except (TypeError, KeyError, AttributeError):  # a hand-made value: show what we could
        pass
    return form


class HolidayPages(Controller):
    path = PAGE
    include_in_schema = False
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attributes
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012
    exception_handlers = {NotAuthorizedException: login_redirect}  # noqa: RUF012

    async def _index(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        *,
        form: dict[str, str] | None = None,
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Template:
        return render(
            request,
            "admin/holidays.html",
            status=status,
            member=member,
            overview=await holiday_notices.overview(utcnow()),
            keys=holiday_calendar.statutory_rules().keys,
            form=form or {},
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
        return await self._index(request, member, notice="loaded" if notice == "loaded" else None)

    @post("/preview", guards=[requires_role("superadmin")])
    async def preview(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Template:
        raw = form_to_notice(data)
        try:
            seen = await holiday_notices.preview(raw, now=utcnow())
        except DomainError as exc:
            form = {k: field(data, k) for k in data}
            message = error_text(request_locale(request), exc)
            return await self._index(request, member, form=form, error=message, status=exc.status)
        return self._preview(request, member, seen)

    def _preview(
        self,
        request: Request[Any, Any, Any],
        member: StaffMember,
        seen: dict[str, Any],
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        return render(
            request,
            "admin/holiday_preview.html",
            status=status,
            member=member,
            seen=seen,
            notice_json=json.dumps(seen["notice"], ensure_ascii=False),
            error=error,
        )

    @post("/load", guards=[requires_role("superadmin")])
    async def load(
        self,
        request: Request[Any, Any, Any],
        member: NamedDependency[StaffMember],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        locale = request_locale(request)
        try:
            raw = json.loads(field(data, "notice"))
        except ValueError:
            raise DomainError("invalid-input", field="notice", reason="required") from None
        count = field(data, "confirm_affected")
        try:
            if field(data, "confirm") != "on":
                seen = await holiday_notices.preview(raw, now=utcnow())
                message = translate(locale, "holidays.preview.confirm_required")
                return self._preview(request, member, seen, message, 422)
            await holiday_notices.load(
                raw,
                confirm_affected=int(count) if count.isdigit() else None,
                actor=member,
                now=utcnow(),
                settings=request.app.state.settings,
                ip=client_ip(request),
            )
        except DomainError as exc:
            if exc.slug != "holiday-preview-stale":
                form = _notice_to_form(raw) if isinstance(raw, dict) else {}
                return await self._index(
                    request, member, form=form, error=error_text(locale, exc), status=exc.status
                )
            seen = await holiday_notices.preview(raw, now=utcnow())
            return self._preview(request, member, seen, error_text(locale, exc), exc.status)
        return Redirect(PAGE, status_code=303, query_params={"notice": "loaded"})
