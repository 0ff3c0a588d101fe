"""Tables of the document pre-check: one per appointment, one row per party.

No row means ``not_submitted``. The pair (precheck, role) is unique through a raw
migration (Piccolo's composite Unique does not apply on SQLite).
"""

from __future__ import annotations

from piccolo.columns import JSON, Date, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from scheduler.db.tables import Appointment


class Precheck(Table):
    id: Serial
    appointment = ForeignKey(references=Appointment, unique=True)
    status = Varchar(length=20, index=True)  # submitted, approved, needs_correction
    # Raised by every submission: a clerk's decision applies to the version they read.
    version = Integer(default=1)
    # Reviews so far: makes each review's SMS its own outbox key.
    reviews = Integer(default=0)
    note = Text(default="")
    reviewer_id = Integer(null=True, default=None)
    reviewer_name = Varchar(length=64, default="")
    reviewed_at = Timestamptz(null=True, default=None)
    submitted_at = Timestamptz()


class PrecheckParty(Table):
    id: Serial
    precheck = ForeignKey(references=Precheck, index=True)
    role = Varchar(length=1)  # "a" or "b"
    nationality = Varchar(length=2)  # ISO 3166-1 alpha-2
    occupation = Varchar(length=50, default="")
    education = Varchar(length=24, default="")
    marital_status = Varchar(length=16, default="")  # before a marriage
    hukou_address = Varchar(length=120, default="")  # asked by rule sets before 2025-05-10
    # Asked of parties whose document carries no birth date (rule set ``fields``).
    birth_date = Date(null=True, default=None)
    sex = Varchar(length=6, default="")
    # Document keys the party ticked (scheduler.domain.precheck.DOCUMENTS).
    documents = JSON(default="[]")


PRECHECK_TABLES: list[type[Table]] = [Precheck, PrecheckParty]
