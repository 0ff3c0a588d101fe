"""Piccolo tables. Times are stored in UTC (Timestamptz); ``day`` columns are the
office's local calendar date, which is what people mean by "the 14th of February".

Counters (``booked``, ``people``) are stored, not counted, so a cap can be
enforced with one conditional UPDATE (see docs/design.md, "No overbooking").
Composite unique indexes live in a raw migration because Piccolo's composite
``Unique`` constraint does not apply on SQLite.
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

_LOTTERY = "scheduler.db.lottery_tables"
_WAITLIST = "scheduler.db.waitlist_tables"


class Office(Table):
    id: Serial
    code = Varchar(length=16, unique=True)
    name_zh = Varchar(length=120)
    name_en = Varchar(length=120)
    address_zh = Varchar(length=255, default="")
    address_en = Varchar(length=255, default="")
    region = Varchar(length=32, default="", index=True)
    timezone = Varchar(length=64, default="Asia/Shanghai")
    counters = Integer(default=1)
    # Couples per local day, all services together.
    day_cap = Integer(default=100)
    # People (a couple counts two) expected in the hall per one-hour window.
    onsite_cap = Integer(default=40)
    booking_days_ahead = Integer(default=30)
    booking_opens_at = Varchar(length=5, default="08:30")
    hold_minutes = Integer(default=15)
    active = Boolean(default=True)
    # Designated by the province for registrations involving Hong Kong, Macau or
    # Taiwan residents, overseas Chinese and foreigners (Regulations art. 2 para. 2);
    # which party kinds need such an office is rule data (scheduler/domain/rules.py).
    designated = Boolean(default=False)


class OfficeService(Table):
    id: Serial
    office = ForeignKey(references=Office, index=True)
    service = Varchar(length=32)
    slot_minutes = Integer(default=30)
    slot_cap = Integer(default=4)
    # Rules as JSON: {"0": [["09:00", "12:00"], ["13:30", "17:00"]], ...}, Monday = "0".
    weekly_hours = JSON(default="{}")
    active = Boolean(default=True)


class Slot(Table):
    id: Serial
    office = ForeignKey(references=Office, index=True)
    service = Varchar(length=32)
    day = Date(index=True)
    start_at = Timestamptz()
    end_at = Timestamptz()
    capacity = Integer()
    booked = Integer(default=0)
    # Set by active blackouts (see scheduler/usecases/offices/blackouts.py): a blocked slot takes
    # no booking; a reduced capacity is a "discouraged" day's lower cap.
    blocked = Boolean(default=False)
    reduced_capacity = Integer(null=True, default=None)
    # Unconfirmed first-come holds among ``booked`` (capacity.take_hold, issue 13.3).
    held = Integer(default=0)
    # Holds beyond the unconfirmed share, waiting for a seat (not among ``booked``);
    # at most HOLD_WAITING_PER_FREE_SEAT x the seats not taken when each was counted.
    waiting = Integer(default=0)
    # The day's proofs (issue 16, scheduler/domain/day_cover.py), the same on every
    # slot of the (office, day) and kept by scheduler/db/seats.py: the slot caps alone
    # keep the day cap (its office_day.booked is then not maintained), and the
    # smallest unconfirmed share from which they keep the day's share (NULL: never;
    # office_day.held is then maintained).
    day_covered = Boolean(default=False)
    share_covered = Integer(null=True, default=None)


class OfficeDay(Table):
    id: Serial
    office = ForeignKey(references=Office)
    day = Date()
    capacity = Integer()
    booked = Integer(default=0)
    held = Integer(default=0)  # unconfirmed first-come holds among booked


class OnsiteWindow(Table):
    id: Serial
    office = ForeignKey(references=Office)
    window_start = Timestamptz()
    capacity = Integer()
    people = Integer(default=0)


class Appointment(Table):
    id: Serial
    reference = Varchar(length=20, unique=True)
    manage_token_hash = Varchar(length=64)
    office = ForeignKey(references=Office, index=True)
    slot = ForeignKey(references=Slot, index=True)
    service = Varchar(length=32)
    status = Varchar(length=24, index=True)
    locale = Varchar(length=8, default="zh-Hans")
    people = Integer(default=2)
    hold_expires_at = Timestamptz(null=True, default=None, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    confirmed_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)
    # Set when scheduler.usecases.privacy.retention erased the couple's personal data
    # (kept: statistics).
    erased_at = Timestamptz(null=True, default=None, index=True)
    # The slot whose ``held`` counter this unconfirmed hold took (capacity.take_hold).
    hold_slot = Integer(null=True, default=None, index=True)
    # No seat taken yet: held while the unconfirmed share was full; the seat is
    # taken when both partners have confirmed (capacity.take_awaited_seat).
    awaiting_seat = Boolean(default=False)
    # The slot whose ``waiting`` counter this waiting hold took (seats.take_seat_in_share);
    # NULL once it took its seat or ended.
    wait_slot = Integer(null=True, default=None, index=True)


class Party(Table):
    """One partner of a couple, owned by exactly one of: an appointment, a lottery
    application, a waiting-list entry (CHECK ``party_one_owner`` and one row per
    owner and role, both in migration 2026-12-04T11:00; docs/decisions.md, "One
    verified couple"). Written and confirmed through scheduler/usecases/couples/confirmation.py."""

    id: Serial
    appointment = ForeignKey(references=Appointment, null=True, default=None, index=True)
    # The owners of the other two kinds live in modules that import this one.
    application: ForeignKey[Table] = ForeignKey(
        references=LazyTableReference("LotteryApplication", module_path=_LOTTERY),
        null=True,
        default=None,
        index=True,
    )
    entry: ForeignKey[Table] = ForeignKey(
        references=LazyTableReference("WaitlistEntry", module_path=_WAITLIST),
        null=True,
        default=None,
        index=True,
    )
    role = Varchar(length=1)  # "a" or "b"
    name = Varchar(length=100)
    id_type = Varchar(length=24)
    # The ID number sealed for reveals (scheduler.kernel.crypto), masked for lists, and
    # keyed-hashed for lookups; see scheduler/usecases/privacy/personal_data.py. All ""
    # once erased by the retention jobs.
    id_sealed = Text(default="")
    id_masked = Varchar(length=40, default="")
    id_hash = Varchar(length=64, index=True)
    # The number's keyed hash whatever its type (personal_data.number_hash); "" where
    # not known (booking parties before issue 15) and once erased.
    number_hash = Varchar(length=64, default="")
    phone = Varchar(length=20)
    code_hash = Varchar(length=64)
    code_attempts = Integer(default=0)
    confirmed_at = Timestamptz(null=True, default=None)


class IdClaim(Table):
    """One row per ID number holding an active appointment of a service that
    allows only one (marriage). The unique ``claim`` column makes the rule hold
    under races without locks."""

    id: Serial
    claim = Varchar(length=100, unique=True)
    appointment = ForeignKey(references=Appointment, index=True)


class AppointmentEvent(Table):
    id: Serial
    appointment = ForeignKey(references=Appointment, index=True)
    kind = Varchar(length=24)
    from_slot = Integer(null=True, default=None)
    to_slot = Integer(null=True, default=None)
    actor = Varchar(length=64, default="couple")
    at = Timestamptz(default=TimestamptzNow())


class OutboxMessage(Table):
    id: Serial
    # Uniqueness key of the event, e.g. "appointment:42:code:a:1".
    key = Varchar(length=120, unique=True)
    to_phone = Varchar(length=20)
    template = Varchar(length=48)
    locale = Varchar(length=8)
    payload = JSON(default="{}")
    body = Text(default="")
    status = Varchar(length=16, default="pending", index=True)
    due_at = Timestamptz(default=TimestamptzNow(), index=True)
    attempts = Integer(default=0)
    lease_owner = Varchar(length=64, null=True, default=None)
    lease_expires_at = Timestamptz(null=True, default=None)
    provider_sid = Varchar(length=64, null=True, default=None, index=True)
    error_code = Varchar(length=16, null=True, default=None)
    error_text = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
    # Urgent messages (codes, closures) ignore quiet hours.
    urgent = Boolean(default=False)
    validity_seconds = Integer(default=14400)
    status_at = Timestamptz(null=True, default=None)
    # Its secrets (codes, manage code) masked once sent (scheduler/notify/scrub.py).
    scrubbed = Boolean(default=False)
    # Set when the SMS could not be delivered and a clerk should phone the couple.
    needs_call = Boolean(default=False, index=True)
    appointment_id = Integer(null=True, default=None, index=True)


class SmsPace(Table):
    """Send-time reservations per sender, shared by every dispatcher process."""

    id: Serial
    sender = Varchar(length=64, unique=True)
    next_at = Timestamptz()


class DeliveryEvent(Table):
    """Every status callback as received (also for SIDs not yet recorded: a callback
    can overtake the dispatcher's own write of the SID)."""

    id: Serial
    provider_sid = Varchar(length=64, index=True)
    status = Varchar(length=16)
    error_code = Varchar(length=16, null=True, default=None)
    received_at = Timestamptz(default=TimestamptzNow())
    applied = Boolean(default=False)


class IdempotencyRecord(Table):
    id: Serial
    key = Varchar(length=200, unique=True)
    request_hash = Varchar(length=64)
    status_code = Integer()
    body = Text()
    created_at = Timestamptz(default=TimestamptzNow(), index=True, index_method=IndexMethod.btree)


class Staff(Table):
    """A registry employee. Clerks and admins see only their offices (StaffOffice);
    a superadmin sees every office. Lockout state lives here so that it holds across
    processes."""

    id: Serial
    username = Varchar(length=64, unique=True)
    display_name = Varchar(length=120, default="")
    password_hash = Varchar(length=255)
    role = Varchar(length=16)  # clerk, admin, superadmin
    active = Boolean(default=True)
    failed_logins = Integer(default=0)
    locked_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class StaffOffice(Table):
    """Which offices a clerk or admin works for (unique pair: raw migration)."""

    id: Serial
    staff = ForeignKey(references=Staff, index=True)
    office = ForeignKey(references=Office, index=True)


class StaffSession(Table):
    """A signed-in session: a browser cookie or an API bearer token, stored as SHA-256."""

    id: Serial
    token_hash = Varchar(length=64, unique=True)
    staff = ForeignKey(references=Staff, index=True)
    kind = Varchar(length=8)  # cookie, bearer
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(index=True)
    last_seen_at = Timestamptz(default=TimestamptzNow())


class AuditLog(Table):
    """Who did what, when, to which object, with the values before and after.
    Plain integers, not foreign keys: the record outlives the rows it names."""

    id: Serial
    actor_id = Integer(null=True, default=None, index=True)
    actor_name = Varchar(length=64)
    action = Varchar(length=48, index=True)
    office_id = Integer(null=True, default=None, index=True)
    object_type = Varchar(length=32)
    object_id = Varchar(length=64)
    before = JSON(null=True, default=None)
    after = JSON(null=True, default=None)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    ip = Varchar(length=45, null=True, default=None)


ALL_TABLES: list[type[Table]] = [
    Office,
    OfficeService,
    Slot,
    OfficeDay,
    OnsiteWindow,
    Appointment,
    Party,
    IdClaim,
    AppointmentEvent,
    OutboxMessage,
    SmsPace,
    DeliveryEvent,
    IdempotencyRecord,
    Staff,
    StaffOffice,
    StaffSession,
    AuditLog,
]
