"""Every staff route handler, for the app. Kept out of the package's __init__ so
that importing ``scheduler.web.auth`` (the API modules do) loads no pages."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router

from scheduler.kernel.clock import utcnow
from scheduler.usecases.calendar import holidays as holiday_calendar
from scheduler.web.staff.admin_pages import AdminPages
from scheduler.web.staff.api import StaffApi
from scheduler.web.staff.desk_pages import DeskPages
from scheduler.web.staff.holiday_pages import HolidayPages
from scheduler.web.staff.lottery_pages import LotteryAdminPages
from scheduler.web.staff.office_pages import OfficePages
from scheduler.web.staff.pages import StaffLoginPages, StaffPages
from scheduler.web.staff.policy_pages import PolicyPages
from scheduler.web.staff.precheck_pages import PrecheckPages
from scheduler.web.staff.report_pages import ReportPages
from scheduler.web.staff.rule_pages import RulePages


async def _holiday_warning(request: Request[Any, Any, Any]) -> None:
    """Staff pages warn admins of years the booking window reaches with no holiday
    notice: read per page view (two small queries), so every process shows it at
    once and a loaded notice clears it at once."""
    path = request.url.path
    if path == "/staff" or path.startswith("/staff/"):
        request.state.holiday_missing = await holiday_calendar.missing_years(utcnow())


STAFF_ROUTES: list[Any] = [
    StaffApi,
    StaffLoginPages,
    StaffPages,
    DeskPages,
    AdminPages,
    OfficePages,
    PrecheckPages,
    ReportPages,
    PolicyPages,
    LotteryAdminPages,
    RulePages,
    HolidayPages,
]
# What the app mounts: every staff route behind the holiday-warning hook.
STAFF_ROUTER = Router("/", route_handlers=STAFF_ROUTES, before_request=_holiday_warning)
