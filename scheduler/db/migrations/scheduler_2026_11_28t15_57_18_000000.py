"""One row per pre-check and party."""

from __future__ import annotations

from scheduler.db.raw_indexes import unique_indexes

ID = "2026-11-28T15:57:18:000000"
VERSION = "1.38.0"
DESCRIPTION = "precheck unique indexes"

INDEXES = [
    ("precheck_party_precheck_role_uq", "precheck_party", "precheck, role"),
]

forwards = unique_indexes(ID, DESCRIPTION, INDEXES)
