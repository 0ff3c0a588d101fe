"""How far odd input may go before it is refused as "no such thing" or "invalid".

Object ids are SERIAL columns: 32-bit on PostgreSQL (SQLite's are 64-bit). A
larger number in a path names nothing, so it answers 404 like any unknown id,
instead of overflowing the database driver (a 500).

Dates: nothing is booked more than a year back or two years ahead (booking
windows are at most 366 days); dates far outside answer 422, instead of
overflowing date arithmetic at year 1 or 9999.
"""

from __future__ import annotations

from datetime import date, timedelta

MAX_ID = 2**31 - 1
REACH_BACK = timedelta(days=366)
REACH_AHEAD = timedelta(days=2 * 366)


def id_in_range(value: int) -> bool:
    return 0 <= value <= MAX_ID


def date_in_reach(day: date, today: date) -> bool:
    """Whether a date is near enough to today to mean anything here."""
    return today - REACH_BACK <= day <= today + REACH_AHEAD
