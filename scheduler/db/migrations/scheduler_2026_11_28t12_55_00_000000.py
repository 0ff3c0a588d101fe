"""Composite unique indexes (Piccolo's composite Unique does not apply on SQLite)."""

from __future__ import annotations

from scheduler.db.raw_indexes import unique_indexes

ID = "2026-11-28T12:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite unique indexes"

INDEXES = [
    ("slot_office_service_start_uq", "slot", "office, service, start_at"),
    ("office_day_office_day_uq", "office_day", "office, day"),
    ("onsite_window_office_start_uq", "onsite_window", "office, window_start"),
    ("office_service_office_service_uq", "office_service", "office, service"),
    ("party_appointment_role_uq", "party", "appointment, role"),
]

forwards = unique_indexes(ID, DESCRIPTION, INDEXES)
