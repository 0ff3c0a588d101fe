"""Tables of blackouts and the reschedule runs they start."""

from __future__ import annotations

from piccolo.columns import JSON, Boolean, Date, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from scheduler.db.tables import Appointment, Office


class Blackout(Table):
    id: Serial
    kind = Varchar(length=20)  # closed | no_new_bookings | discouraged
    start_date = Date(index=True)
    end_date = Date(index=True)
    start_time = Varchar(length=5, null=True, default=None)  # local "HH:MM", both or neither
    end_time = Varchar(length=5, null=True, default=None)
    services = JSON(default="[]")  # empty: every service
    reason = JSON(default="{}")  # {"zh-Hans": ..., "zh-Hant": ..., "en": ...}
    cap_percent = Integer(default=50)  # discouraged: share of each slot's capacity kept
    allow_other_office = Boolean(default=False)
    created_by = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    lifted_at = Timestamptz(null=True, default=None, index=True)
    lifted_by = Varchar(length=64, null=True, default=None)


class BlackoutOffice(Table):
    id: Serial
    blackout = ForeignKey(references=Blackout, index=True)
    office = ForeignKey(references=Office, index=True)


class RescheduleRun(Table):
    id: Serial
    blackout = ForeignKey(references=Blackout, index=True)
    status = Varchar(length=16, index=True)  # pending | running | done
    total = Integer(default=0)
    moved = Integer(default=0)
    needs_rebooking = Integer(default=0)
    notified = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    lease_owner = Varchar(length=64, null=True, default=None)
    lease_expires_at = Timestamptz(null=True, default=None)


class RescheduleItem(Table):
    """One appointment handled by one run: the unique (run, appointment) pair is
    what makes a restarted run skip what it already did."""

    id: Serial
    run = ForeignKey(references=RescheduleRun, index=True)
    appointment = ForeignKey(references=Appointment, index=True)
    outcome = Varchar(length=16)  # moved | needs_rebooking
    from_slot = Integer()
    to_slot = Integer(null=True, default=None)
    at = Timestamptz(default=TimestamptzNow())


BLACKOUT_TABLES: list[type[Table]] = [Blackout, BlackoutOffice, RescheduleRun, RescheduleItem]
