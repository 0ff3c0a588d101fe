"""Every staff route handler, for the app. Kept out of the package's __init__ so
that importing ``scheduler.web.staff.auth`` (the API modules do) loads no pages."""

from __future__ import annotations

from typing import Any

from scheduler.web.staff.admin_pages import AdminPages
from scheduler.web.staff.api import StaffApi
from scheduler.web.staff.desk_pages import DeskPages
from scheduler.web.staff.lottery_pages import LotteryAdminPages
from scheduler.web.staff.office_pages import OfficePages
from scheduler.web.staff.pages import StaffLoginPages, StaffPages
from scheduler.web.staff.policy_pages import PolicyPages
from scheduler.web.staff.precheck_pages import PrecheckPages
from scheduler.web.staff.report_pages import ReportPages
from scheduler.web.staff.rule_pages import RulePages

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
]
