"""One lottery per office, date and service."""

from __future__ import annotations

from scheduler.db.raw_indexes import unique_indexes

ID = "2026-11-28T16:02:53:000000"
VERSION = "1.38.0"
DESCRIPTION = "lottery unique indexes"

INDEXES = [
    ("lottery_office_office_day_service_uq", "lottery_office", "office, day, service"),
]

forwards = unique_indexes(ID, DESCRIPTION, INDEXES)
