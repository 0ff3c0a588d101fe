"""One row per (staff, office) pair (Piccolo's composite Unique does not apply on SQLite)."""

from __future__ import annotations

from scheduler.db.raw_indexes import unique_indexes

ID = "2026-11-28T13:12:29:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff office unique index"

INDEXES = [
    ("staff_office_staff_office_uq", "staff_office", "staff, office"),
]

forwards = unique_indexes(ID, DESCRIPTION, INDEXES)
