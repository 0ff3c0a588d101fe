"""Tables of the offices admin (issue 6): service suspensions.

A suspension is enforced through a ``no_new_bookings`` blackout limited to its
service (scheduler/usecases/offices/suspensions.py): the slot marks, the booking check racing a
declaration and the reopening on lift are the blackout machinery's. This row
keeps what is specific to a suspension: which blackout enforces it, and that
the couples already booked were told.
"""

from __future__ import annotations

from piccolo.columns import JSON, Date, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from scheduler.db.blackout_tables import Blackout


class ServiceSuspension(Table):
    id: Serial
    blackout = ForeignKey(references=Blackout, index=True)
    service = Varchar(length=32, index=True)
    start_date = Date(index=True)
    end_date = Date(index=True)
    reason = JSON(default="{}")  # {"zh-Hans": ..., "zh-Hant": ..., "en": ...}
    notified = Integer(default=0)  # appointments whose couple was texted
    created_by = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    lifted_at = Timestamptz(null=True, default=None, index=True)
    lifted_by = Varchar(length=64, null=True, default=None)


OFFICE_TABLES: list[type[Table]] = [ServiceSuspension]
