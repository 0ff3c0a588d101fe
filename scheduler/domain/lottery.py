"""The hot-date lottery's rules: the seed commitment, the draw order, the seats.

Pure: no I/O, no clock. Everything here must be re-implementable by anyone who
wants to check a published draw, so the algorithm is fixed and written down:

**Seed and commitment.** The seed is 32 random bytes written as 64 lower-case
hexadecimal characters. Before the application window opens, the service
publishes ``SHA-256(seed text as ASCII)`` (``echo -n <seed> | sha256sum``); the
seed itself is published after the draw.

**Random stream.** Block ``i`` (``i`` = 0, 1, 2, ...) is
``SHA-256("<seed>:<i>")`` over ASCII, ``i`` in decimal without padding. The
stream is the concatenation of the blocks; it is read 8 bytes at a time, each an
unsigned 64-bit big-endian integer ``x``.

**Uniform integer below n.** Read ``x``; with ``limit = 2^64 - (2^64 mod n)``,
reject ``x >= limit`` and read again (so every value is equally likely); the
result is ``x mod n``.

**Draw order.** Sort the confirmed applications' references in ascending
ASCII order, then shuffle with Fisher-Yates (Durstenfeld): for ``i`` from
``n - 1`` down to 1, take ``j`` = uniform integer below ``i + 1`` and swap items
``i`` and ``j``. The resulting list, first to last, is the draw order.

**Seats.** Walk the draw order. An application naming an ID that already won is
skipped (ineligible), as is one whose partner already holds a marriage
appointment elsewhere. Otherwise each of its preferences is tried in the order
given: an office and a start time takes that slot if it has room; an office and
"any time" takes that office's earliest slot with room. The first preference
with room wins; an application with none waits, in order, for a seat freed
later. "Room" means all three caps (slot, office-day, hall window in people).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEED_BYTES = 32
MAX_PREFERENCES = 3
_TWO_64 = 1 << 64


def commitment(seed: str) -> str:
    """The published hash of a seed: SHA-256 of its hexadecimal text."""
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def is_seed(value: str) -> bool:
    return len(value) == 2 * SEED_BYTES and all(c in "0123456789abcdef" for c in value)


class SeedStream:
    """The random stream of a seed (see the module text)."""

    def __init__(self, seed: str) -> None:
        if not is_seed(seed):
            raise ValueError("a seed is 64 lower-case hexadecimal characters")
        self._seed = seed
        self._words = self._generate()

    def _generate(self) -> Iterator[int]:
        block = 0
        while True:
            digest = hashlib.sha256(f"{self._seed}:{block}".encode("ascii")).digest()
            yield from struct.unpack(">4Q", digest)  # four 64-bit big-endian words
            block += 1

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        if n < 1:
            raise ValueError("n must be positive")
        limit = _TWO_64 - (_TWO_64 % n)
        while True:
            x = next(self._words)
            if x < limit:
                return x % n


def draw_order(seed: str, references: Iterable[str]) -> list[str]:
    """The draw order of these applications under this seed."""
    items = sorted(set(references))
    stream = SeedStream(seed)
    for i in range(len(items) - 1, 0, -1):
        j = stream.below(i + 1)
        items[i], items[j] = items[j], items[i]
    return items


@dataclass(frozen=True)
class Preference:
    office_id: int
    start: str | None  # local "HH:MM"; None: any time that day


@dataclass(frozen=True)
class Entry:
    """One confirmed application as the draw sees it."""

    reference: str
    id_hashes: tuple[str, ...]
    preferences: tuple[Preference, ...]


@dataclass(frozen=True)
class Room:
    """A slot of the lottery's date with what is still free on it."""

    slot_id: int
    office_id: int
    start: str  # local "HH:MM"
    window: datetime  # its hall window (on-site cap), as the capacity module keys it
    free: int


@dataclass
class Seats:
    """What is free on the date: per slot, per office-day, per hall window (people)."""

    rooms: list[Room]
    day_free: dict[int, int]
    hall_free: dict[tuple[int, datetime], int]
    people: int = 2
    _slot_free: dict[int, int] = field(init=False)
    _left: int = field(init=False)

    def __post_init__(self) -> None:
        self.rooms = sorted(self.rooms, key=lambda r: (r.office_id, r.start, r.slot_id))
        self._slot_free = {r.slot_id: r.free for r in self.rooms}
        self._left = sum(max(v, 0) for v in self._slot_free.values())

    def fits(self, room: Room) -> bool:
        return (
            self._slot_free[room.slot_id] > 0
            and self.day_free.get(room.office_id, 0) > 0
            and self.hall_free.get((room.office_id, room.window), 0) >= self.people
        )

    def take(self, room: Room) -> None:
        self._left -= 1
        self._slot_free[room.slot_id] -= 1
        self.day_free[room.office_id] -= 1
        self.hall_free[(room.office_id, room.window)] -= self.people

    def first_fit(self, pref: Preference) -> Room | None:
        if self._left <= 0:  # nothing free anywhere: no need to look
            return None
        for room in self.rooms:
            if room.office_id != pref.office_id:
                continue
            if pref.start is not None and room.start != pref.start:
                continue
            if self.fits(room):
                return room
        return None

    def total_free(self) -> int:
        return self._left


@dataclass(frozen=True)
class Allocation:
    awards: dict[str, int]  # reference -> slot id, in draw order
    ineligible: frozenset[str]
    waiting: tuple[str, ...]  # no seat yet, in draw order


def allocate(
    order: Sequence[Entry], seats: Seats, *, already_booked: frozenset[str] = frozenset()
) -> Allocation:
    """Walk ``order`` giving each entry its first preference with room (module text).

    ``already_booked``: ID hashes holding an active marriage appointment, whose
    applications cannot win (one active marriage appointment per ID).
    """
    won_ids: set[str] = set(already_booked)
    awards: dict[str, int] = {}
    ineligible: set[str] = set()
    waiting: list[str] = []
    for entry in order:
        if any(h in won_ids for h in entry.id_hashes):
            ineligible.add(entry.reference)
            continue
        room = None
        for pref in entry.preferences:
            if (room := seats.first_fit(pref)) is not None:
                break
        if room is None:
            waiting.append(entry.reference)
            continue
        seats.take(room)
        awards[entry.reference] = room.slot_id
        won_ids.update(entry.id_hashes)
    return Allocation(awards=awards, ineligible=frozenset(ineligible), waiting=tuple(waiting))


@dataclass(frozen=True)
class Window:
    opens_at: datetime
    closes_at: datetime


def window(
    day: date,
    tz: ZoneInfo,
    *,
    opens_days_before: int,
    opens_at: time,
    closes_days_before: int,
    closes_at: time,
) -> Window:
    """The application window in UTC from its local description."""
    opens = datetime.combine(day - timedelta(days=opens_days_before), opens_at, tz)
    closes = datetime.combine(day - timedelta(days=closes_days_before), closes_at, tz)
    return Window(opens_at=opens, closes_at=closes)


def window_problems(
    day: date, tz: ZoneInfo, win: Window, now: datetime, confirm_hours: int
) -> list[tuple[str, str]]:
    """(field, reason) for every rule a new lottery's window breaks.

    The window must open in the future (the seed's hash is published before it
    opens), close after it opens, and leave the winners their whole confirmation
    time before the date.
    """
    found = []
    if win.opens_at <= now:
        found.append(("opens_days_before", "lottery-opens-past"))
    if win.closes_at <= win.opens_at:
        found.append(("closes_days_before", "lottery-window-order"))
    day_start = datetime.combine(day, time(0), tz)
    if win.closes_at + timedelta(hours=confirm_hours) > day_start:
        found.append(("confirm_hours", "lottery-confirm-too-late"))
    return found


def confirm_deadline(now: datetime, confirm_hours: int, day: date, tz: ZoneInfo) -> datetime:
    """When a winner drawn (or passed a seat) at ``now`` must have confirmed by:
    ``confirm_hours`` later, but never past the start of the date."""
    return min(now + timedelta(hours=confirm_hours), datetime.combine(day, time(0), tz))


def passing_on(now: datetime, day: date, tz: ZoneInfo) -> bool:
    """Freed seats go to the next in the draw order until the date begins; from
    then on they are the waiting list's (or first come's)."""
    return now < datetime.combine(day, time(0), tz)
