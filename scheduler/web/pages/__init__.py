"""Server-rendered pages (Jinja2 + HTMX) for couples: book, confirm, manage."""

from __future__ import annotations

from typing import Any

from scheduler.web.pages.book import BookingPages
from scheduler.web.pages.couple_access import RecoverPages, SelfConfirmPages
from scheduler.web.pages.lottery import LotteryPages
from scheduler.web.pages.manage import ManagePages
from scheduler.web.pages.precheck import PrecheckPages
from scheduler.web.pages.waitlist import WaitlistPages

PAGE_ROUTES: list[Any] = [
    BookingPages,
    RecoverPages,
    ManagePages,
    PrecheckPages,
    LotteryPages,
    WaitlistPages,
    SelfConfirmPages,
]
