"""Tables of the on-site queue: tickets, their numbering and who is in the hall."""

from __future__ import annotations

from piccolo.columns import Boolean, Date, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.table import Table

from scheduler.db.tables import Appointment, Office


class QueueTicket(Table):
    id: Serial
    office = ForeignKey(references=Office, index=True)
    day = Date(index=True)
    appointment = ForeignKey(references=Appointment, unique=True)
    service = Varchar(length=32)
    label = Varchar(length=8)  # "M012"
    status = Varchar(length=16, index=True)  # waiting, called, serving, completed, missed
    priority = Boolean(default=False)
    order_at = Timestamptz()  # see domain.queue.call_order_at
    checked_in_at = Timestamptz()
    called_at = Timestamptz(null=True, default=None)
    counter = Varchar(length=16, null=True, default=None)
    call_count = Integer(default=0)
    requeued = Boolean(default=False)
    finished_at = Timestamptz(null=True, default=None)


class TicketSequence(Table):
    """Last ticket number per office, day and prefix (M012 -> 12)."""

    id: Serial
    office = ForeignKey(references=Office)
    day = Date()
    prefix = Varchar(length=2)
    last = Integer(default=0)


class HallCount(Table):
    """People checked in and not yet finished, per office and day: the live crowd cap."""

    id: Serial
    office = ForeignKey(references=Office)
    day = Date()
    people = Integer(default=0)


QUEUE_TABLES: list[type[Table]] = [QueueTicket, TicketSequence, HallCount]
