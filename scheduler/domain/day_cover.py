"""When the slot caps alone keep an office-day's caps (issue 16, docs/decisions.md
"The day counter off the booking's path").

A booking takes its slot row and, before issue 16, the office-day row too: every
booking of a day queued on that one row lock. The day row proves nothing when the
slots of the day cannot hold more than it allows, so the proof is worked out here
(pure arithmetic) and stored on the slot rows by scheduler/db/seats.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SlotBound:
    """One slot of the day as the proof sees it: the most seats it can ever hold
    until its caps change (``max(booked, capacity, reduced capacity)``: a seat is
    taken only below the effective cap, and a lowered cap may leave more taken)
    and the unconfirmed holds it counts now with the cap those are held to."""

    seats: int
    held: int
    share_cap: int  # max(capacity, reduced capacity)


def _share(percent: int, cap: int) -> int:
    """The most unconfirmed holds ``percent`` % of ``cap`` admits: a hold is counted
    while ``held * 100 < percent * cap``, so up to ceil(percent * cap / 100)."""
    return -(-percent * cap // 100)


def day_covered(day_cap: int, slots: Sequence[SlotBound]) -> bool:
    """The slots together can never hold more than the day's cap."""
    return sum(s.seats for s in slots) <= day_cap


def share_threshold(day_cap: int, slots: Sequence[SlotBound]) -> int | None:
    """The smallest percent p such that, for every share from p to 100 %, the slots'
    unconfirmed shares together can never exceed the day's (None: not even 100 %).

    A slot's holds only grow while below its own share, so ``max(held now, share)``
    bounds it until a cap changes (when this is worked out again). Rounding up per
    slot makes small shares fail where large ones hold (14 slots of 4 seats and a day
    of 100: 1 % gives 14 holds against the day's 1), hence a threshold."""
    lowest = None
    for percent in range(100, 0, -1):
        total = sum(max(s.held, _share(percent, s.share_cap)) for s in slots)
        if total > _share(percent, day_cap):
            break
        lowest = percent
    return lowest
