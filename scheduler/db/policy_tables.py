"""Tables of the editable policies and the no-show bans (issues 4.8 and 6.3)."""

from __future__ import annotations

from piccolo.columns import JSON, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from scheduler.db.tables import Office


class PolicyOverride(Table):
    """A policy's value where an admin changed it; absent: the default from settings."""

    id: Serial
    name = Varchar(length=32, unique=True)
    value = JSON(default="{}")
    updated_at = Timestamptz(default=TimestamptzNow())
    updated_by = Varchar(length=64, default="")


class Ban(Table):
    """No new booking for one ID number (keyed hash, as ``party.id_hash``) until
    ``ends_at``. ``key`` (hash, kind and appointment of the strike that crossed the
    threshold) is unique, so processes evaluating the same strike write one ban."""

    id: Serial
    key = Varchar(length=120, unique=True)
    id_hash = Varchar(length=64, index=True)
    id_type = Varchar(length=24)
    id_masked = Varchar(length=32)  # never the number itself: the admin list shows this
    office = ForeignKey(references=Office, index=True)  # where the crossing strike happened
    appointment_id = Integer()
    kind = Varchar(length=16)  # no_show | cancelled
    strikes = Integer()
    starts_at = Timestamptz()
    ends_at = Timestamptz(index=True)
    lifted_at = Timestamptz(null=True, default=None)
    lifted_by = Varchar(length=64, null=True, default=None)


class StrikeCursor(Table):
    """How far the ban evaluation has read the appointment_event table."""

    id: Serial
    name = Varchar(length=32, unique=True)
    last_event = Integer(default=0)


POLICY_TABLES: list[type[Table]] = [PolicyOverride, Ban, StrikeCursor]
