"""The staff side: sign-in (pages and API), guards and office scoping, staff pages."""

from __future__ import annotations

from typing import Any

from scheduler.web.staff.api import StaffApi
from scheduler.web.staff.pages import StaffLoginPages, StaffPages

STAFF_ROUTES: list[Any] = [StaffApi, StaffLoginPages, StaffPages]
