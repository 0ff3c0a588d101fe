"""Tables of the couples' own access (issue 14): code resends, access recovery by
SMS, and the manage code kept sealed until the confirmation text carries it."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from scheduler.db.tables import Appointment


class CodeResend(Table):
    """One row per code texted again to one party of a hold (counted per party)."""

    id: Serial
    appointment = ForeignKey(references=Appointment, index=True)
    role = Varchar(length=1)
    at = Timestamptz(default=TimestamptzNow())


class ManageRecovery(Table):
    """One SMS code that restores access to a booking whose manage code was lost."""

    id: Serial
    appointment = ForeignKey(references=Appointment, index=True)
    role = Varchar(length=1)
    code_hash = Varchar(length=64)
    attempts = Integer(default=0)
    expires_at = Timestamptz(default=TimestamptzNow())
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class ManageText(Table):
    """The manage code of a booking, sealed, from the hold until the confirmation
    text carries it (the only time it is ever texted); then deleted."""

    id: Serial
    appointment = ForeignKey(references=Appointment, unique=True)
    token_sealed = Text()


COUPLE_TABLES = [CodeResend, ManageRecovery, ManageText]
