"""Fixed-window rate limits: the window arithmetic and the in-process pre-filter.

The shared counters live in the database (scheduler/usecases/policy/ratelimits.py); this module
holds what needs no I/O. Times are epoch seconds passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    """At most ``count`` hits per ``seconds``-long window; ``count`` 0 means off."""

    count: int
    seconds: int

    @property
    def enabled(self) -> bool:
        return self.count > 0


def window_start(now: float, seconds: int) -> int:
    """Start of the fixed window that contains ``now`` (windows align to the epoch,
    so every process computes the same window without talking to the others)."""
    return int(now // seconds) * seconds


def retry_after(now: float, seconds: int) -> int:
    """Whole seconds until the current window ends (at least 1): the Retry-After value."""
    return max(1, window_start(now, seconds) + seconds - int(now))


@dataclass
class Prefilter:
    """Per-process hit counts per key and window, consulted before the database.

    It only ever *refuses*: a key that this process alone has seen ``count`` times
    in the current window has been counted at least that often in the shared store
    (every hit this process admitted went there), so the shared check would refuse
    it too. Refusing here spares the database a write for each request of a flood.
    Keys that the shared store refused are remembered until their window ends, so
    a flood spread over several processes is also answered locally once each
    process has had one refusal.
    """

    max_keys: int = 100_000
    _hits: dict[str, tuple[int, int]] = field(default_factory=dict)
    _blocked: dict[str, int] = field(default_factory=dict)

    def admit(self, key: str, limit: Limit, now: float) -> bool:
        """Count one hit; False if it is certainly over the limit."""
        start = window_start(now, limit.seconds)
        if self._blocked.get(key) == start:
            return False
        seen_start, hits = self._hits.get(key, (start, 0))
        hits = hits + 1 if seen_start == start else 1
        if len(self._hits) >= self.max_keys and key not in self._hits:
            self._forget_before(now)
        self._hits[key] = (start, hits)
        return hits <= limit.count

    def blocked(self, key: str, limit: Limit, now: float) -> bool:
        """Whether the shared store refused ``key`` in the current window (no counting)."""
        return self._blocked.get(key) == window_start(now, limit.seconds)

    def block(self, key: str, limit: Limit, now: float) -> None:
        """The shared store refused ``key``: refuse it here until the window ends."""
        self._blocked[key] = window_start(now, limit.seconds)

    def _forget_before(self, now: float) -> None:
        # Bounded memory under a flood of distinct keys: drop every count older
        # than a minute (the shortest window in use); the store still decides.
        cutoff = now - 60
        self._hits = {k: v for k, v in self._hits.items() if v[0] >= cutoff}
        self._blocked = {k: v for k, v in self._blocked.items() if v >= cutoff}
        if len(self._hits) >= self.max_keys:
            self._hits.clear()
