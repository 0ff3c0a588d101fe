"""One item per run and appointment; one row per blackout and office."""

from __future__ import annotations

from scheduler.db.raw_indexes import unique_indexes

ID = "2026-11-28T13:27:18:000000"
VERSION = "1.38.0"
DESCRIPTION = "blackout unique indexes"

INDEXES = [
    ("reschedule_item_run_appointment_uq", "reschedule_item", "run, appointment"),
    ("blackout_office_blackout_office_uq", "blackout_office", "blackout, office"),
]

forwards = unique_indexes(ID, DESCRIPTION, INDEXES)
