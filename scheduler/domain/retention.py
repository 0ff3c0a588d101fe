"""Retention of personal data: which appointment days are past it. Pure, ``now`` passed in."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def first_kept_day(now: datetime, tz: ZoneInfo, retention_days: int) -> date:
    """The oldest appointment day whose personal data is still kept.

    An appointment on local day D is erased once D is *more than* ``retention_days``
    before today (office-local): the appointment exactly ``retention_days`` ago is
    kept until the office's next midnight.
    """
    return now.astimezone(tz).date() - timedelta(days=retention_days)


def is_past_retention(day: date, now: datetime, tz: ZoneInfo, retention_days: int) -> bool:
    return day < first_kept_day(now, tz, retention_days)
