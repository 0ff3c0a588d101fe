"""Queue numbering and hall counters: one row per office and day (and prefix)."""

from __future__ import annotations

from scheduler.db.raw_indexes import unique_indexes

ID = "2026-11-28T13:12:43:000000"
VERSION = "1.38.0"
DESCRIPTION = "queue unique indexes"

INDEXES = [
    ("ticket_sequence_office_day_prefix_uq", "ticket_sequence", "office, day, prefix"),
    ("hall_count_office_day_uq", "hall_count", "office, day"),
]

forwards = unique_indexes(ID, DESCRIPTION, INDEXES)
