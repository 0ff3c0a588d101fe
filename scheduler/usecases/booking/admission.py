"""In-process admission of new holds: one writer per slot.

Against the opening-minute rush (issue 16, docs/performance.md "The tail"), in this
process only and not a promise: the seat writer (scheduler/db/seats.py) still
decides every seat in the database. With it, scheduler/db/full_marks.py (a slot
just found full is refused without a query).

* **One hold of a slot at a time enters its write transaction**, in arrival order
  (an ``asyncio.Lock`` is first come, first served). Every hold of a slot ends on
  the same slot row lock anyway; queued here, the waiting holds hold no database
  connection, so refusals and other slots' bookings are not queued behind them
  (asyncpg's pool is not first come, first served: the long tail measured).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


# Per event loop: tests and the CLI run several loops in one process.
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Gate]] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def one_at_a_time(slot_id: int) -> AsyncIterator[None]:
    """Holds of one slot enter in arrival order, one at a time."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    gate = gates.get(slot_id)
    if gate is None:
        gate = gates[slot_id] = _Gate()
    gate.users += 1
    try:
        async with gate.lock:
            yield
    finally:
        gate.users -= 1
        if gate.users == 0:
            del gates[slot_id]
