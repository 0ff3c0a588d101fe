"""Slots this process found full a moment ago, refused without a query.

In a rush nearly every request asks for a full slot, and each still cost a slot read
and a pooled connection (which bookings waiting on the slot's row lock may all
hold). After a ``slot-full`` answer the slot is refused in memory for ``FULL_FOR``
seconds. Not a promise: the seat writer (scheduler/db/seats.py) decides every seat in
the database; a mark only refuses early.

What it costs: a seat given back meanwhile may be refused for at most ``FULL_FOR``.
Every change of the seat writer that may open a seat in this process (a seat or
share given back, a cap changed, blackout marks) clears the marks at once; a seat
freed by another process (the worker's expiry job, a second web process) is seen a
second later. For those seconds a request for a marked slot hears ``slot-full``
where a fresh read might have said ``already-booked`` or a ban (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field

from scheduler.kernel.errors import DomainError

# How long a slot found full is refused without a query (seconds).
FULL_FOR = 1.0



@dataclass
class _State:
    marks: dict[tuple[int, str], float] = field(default_factory=dict)
    # After a change that may open a seat, no mark for FULL_FOR: a booking racing the
    # change (it read the old caps, before the change commits) must not mark the slot
    # full again once the marks were cleared.
    quiet: dict[int, float] = field(default_factory=dict)
    quiet_all: float = 0.0


# Per event loop: tests and the CLI run several loops in one process.
_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _State] = (
    weakref.WeakKeyDictionary()
)


def _of_loop() -> _State:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _State()
    return _states.setdefault(loop, _State())


def refuse_if_marked(slot_id: int, service: str) -> None:
    """``slot-full`` at once if this process found the slot full a moment ago."""
    marks = _of_loop().marks
    until = marks.get((slot_id, service))
    if until is None:
        return
    if time.monotonic() < until:
        raise DomainError("slot-full")
    del marks[(slot_id, service)]


def mark(slot_id: int, service: str) -> None:
    state = _of_loop()
    now = time.monotonic()
    if now < state.quiet_all or now < state.quiet.get(slot_id, 0.0):
        return
    if len(state.marks) > 10_000:  # a bound on memory; marks live a second
        state.marks = {k: until for k, until in state.marks.items() if until > now}
        state.quiet = {k: until for k, until in state.quiet.items() if until > now}
    state.marks[(slot_id, service)] = now + FULL_FOR


def clear(slot_id: int) -> None:
    """A seat of the slot may have opened (or will, when the caller commits)."""
    state = _of_loop()
    for key in [k for k in state.marks if k[0] == slot_id]:
        del state.marks[key]
    state.quiet[slot_id] = time.monotonic() + FULL_FOR


def clear_all() -> None:
    """Caps or many counters changed (or will, when the caller commits)."""
    state = _of_loop()
    state.marks.clear()
    state.quiet.clear()
    state.quiet_all = time.monotonic() + FULL_FOR


def forget() -> None:
    """Nothing known any more: the database under this process was emptied (tests)."""
    state = _of_loop()
    state.marks.clear()
    state.quiet.clear()
    state.quiet_all = 0.0
