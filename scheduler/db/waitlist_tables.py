"""Tables of the waiting list (issue 7, item 3) and of the shared rate-limit counters
(item 4).

A waitlist entry is one couple (two ``party`` rows owned by it, ``party.entry``)
waiting for one date and service at up to three offices. ``WaitlistClaim`` makes "one
active entry per ID number per date" hold under races without locks (a unique column,
like ``IdClaim``).
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    BigInt,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from scheduler.db.tables import Office


class WaitlistEntry(Table):
    id: Serial
    reference = Varchar(length=20, unique=True)
    manage_token_hash = Varchar(length=64)
    service = Varchar(length=32)
    day = Date(index=True)
    # The first office of ``offices`` (the couple's first choice), for staff lists.
    office = ForeignKey(references=Office, index=True)
    # Office ids in the couple's order of preference (1 to 3).
    offices = JSON(default="[]")
    # Local "HH:MM" bounds of an acceptable slot start; both null: any time that day.
    time_from = Varchar(length=5, null=True, default=None)
    time_to = Varchar(length=5, null=True, default=None)
    # pending (phones not verified yet), waiting, offered, booked, lapsed, left, ended
    status = Varchar(length=16, index=True)
    locale = Varchar(length=8, default="zh-Hans")
    created_at = Timestamptz(default=TimestamptzNow())
    # Deadline of the phone verification while pending.
    verify_expires_at = Timestamptz(null=True, default=None)
    # Join order: the moment both phones were verified (ties broken by id).
    joined_at = Timestamptz(null=True, default=None, index=True)
    # The appointment held for the couple by the current or last offer.
    appointment_id = Integer(null=True, default=None, index=True)
    offered_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)


class WaitlistClaim(Table):
    """``<date>:<keyed hash of the ID>`` per active entry: one active entry per ID per date."""

    id: Serial
    claim = Varchar(length=100, unique=True)
    entry = ForeignKey(references=WaitlistEntry, index=True)


class RateCounter(Table):
    """Fixed-window request counters shared by every process
    (see scheduler/usecases/policy/ratelimits.py).
    Epoch seconds: where the current window started and when it ends (the purge
    job deletes rows whose window has ended)."""

    id: Serial
    key = Varchar(length=120, unique=True)
    window_start = BigInt()
    window_end = BigInt(index=True)
    hits = Integer(default=0)


WAITLIST_TABLES: list[type[Table]] = [WaitlistEntry, WaitlistClaim, RateCounter]
