"""One rule set version per jurisdiction and day: "the set in force" is then
unambiguous (after the table exists: Piccolo runs raw steps first)."""

from __future__ import annotations

from scheduler.db.raw_indexes import unique_indexes

ID = "2026-12-03T23:10:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "rule set version unique index"

INDEXES = [
    ("rule_set_version_uq", "rule_set_version", "jurisdiction, effective_from"),
]

forwards = unique_indexes(ID, DESCRIPTION, INDEXES)
