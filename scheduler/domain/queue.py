"""Queue rules: ticket labels, arrival windows, call order, waiting estimates. Pure."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

SERVICE_PREFIX = {
    "marriage": "M",
    "divorce": "D",
    "reissue": "R",
    "ceremony": "C",
    "counselling": "K",
}

Arrival = Literal["early", "on_time", "late"]

# A priority visitor (elderly, disabled) is called as if booked this much
# earlier: ahead of most of the hall, yet never ahead of someone who has
# already waited longer than that, so nobody can be starved.
PRIORITY_BOOST = timedelta(minutes=30)


def ticket_label(service: str, number: int) -> str:
    return f"{SERVICE_PREFIX.get(service, 'X')}{number:03d}"


def arrival(now: datetime, slot_start: datetime, early_minutes: int, late_minutes: int) -> Arrival:
    if now < slot_start - timedelta(minutes=early_minutes):
        return "early"
    if now > slot_start + timedelta(minutes=late_minutes):
        return "late"
    return "on_time"


def call_order_at(slot_start: datetime, checked_in_at: datetime, priority: bool) -> datetime:
    """The instant the queue sorts a ticket by (then check-in time, then id).

    Couples are served in appointment order; one who came late queues from the
    moment of arrival, not from their missed appointment time.
    """
    base = max(slot_start, checked_in_at)
    return base - PRIORITY_BOOST if priority else base


def expected_wait_minutes(waiting_ahead: int, counters: int, minutes_per_couple: float) -> int:
    """A rough, honest estimate: the couples ahead shared over the open counters."""
    if waiting_ahead <= 0:
        return 0
    return math.ceil(waiting_ahead / max(counters, 1) * minutes_per_couple)
