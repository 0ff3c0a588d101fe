"""Tables of hot-date lotteries (issue 7): the lottery, its offices, the couples'
applications and the one-application-per-ID claims. An application's two partners
are ``party`` rows owned by it (``party.application``, scheduler/db/tables.py).
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
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


class Lottery(Table):
    id: Serial
    day = Date(index=True)  # the office's local date the seats are on
    service = Varchar(length=32)
    opens_at = Timestamptz()
    closes_at = Timestamptz(index=True)  # also the draw time
    confirm_hours = Integer(default=48)  # winners' time to confirm after being drawn
    # scheduled -> drawn; cancelled (before the window opens only).
    status = Varchar(length=16, default="scheduled", index=True)
    seed_sha256 = Varchar(length=64)  # published from creation on
    seed = Varchar(length=64)  # secret until the draw, published after it
    draw_order = JSON(default="[]")  # application references, published after the draw
    drawn_at = Timestamptz(null=True, default=None)
    created_by = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    cancelled_at = Timestamptz(null=True, default=None)


class LotteryOffice(Table):
    """An office taking part. Unique (office, day, service) in a raw migration: one
    lottery per office, date and service. Deleted when the lottery is cancelled."""

    id: Serial
    lottery = ForeignKey(references=Lottery, index=True)
    office = ForeignKey(references=Office, index=True)
    day = Date()
    service = Varchar(length=32)


class LotteryApplication(Table):
    id: Serial
    lottery = ForeignKey(references=Lottery, index=True)
    reference = Varchar(length=20, unique=True)
    manage_token_hash = Varchar(length=64)
    locale = Varchar(length=8, default="zh-Hans")
    # pending_confirmation -> confirmed -> (draw) won | waiting | ineligible;
    # won -> lapsed; also expired (codes not entered), withdrawn, unconfirmed (at close).
    status = Varchar(length=24, index=True)
    preferences = JSON(default="[]")  # [{"office": id, "start": "HH:MM" or null}, ...]
    hold_expires_at = Timestamptz(null=True, default=None, index=True)
    appointment_id = Integer(null=True, default=None, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    confirmed_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)


class LotteryClaim(Table):
    """``"<lottery id>:<id hash>"``, unique: one live application per ID number and
    lottery, whichever partner it names, under races without locks."""

    id: Serial
    claim = Varchar(length=100, unique=True)
    application = ForeignKey(references=LotteryApplication, index=True)


LOTTERY_TABLES: list[type[Table]] = [
    Lottery,
    LotteryOffice,
    LotteryApplication,
    LotteryClaim,
]
