"""Growing delays after failed staff sign-ins, per account name and client address.

Locking the account after five failures let anyone lock any clerk out of the desk
(and told them which usernames exist). Instead the wait falls on the pair
(account, address) that failed: the clerk at the counter, from another address,
signs in with the right password at once; the guesser waits longer after every
failure. Unknown usernames are throttled the same way, so the answers reveal
nothing. Argon2 and the per-address request limit bound the guessing rate
further (docs/decisions.md)."""

from __future__ import annotations

from datetime import timedelta

FREE_FAILURES = 4  # typos: no wait for the first few
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=24)  # a pair that failed a day ago starts afresh


def delay_after(failures: int) -> timedelta:
    """How long the pair waits after its ``failures``-th failure in a row:
    nothing for the first FREE_FAILURES, then 30 s, 1 min, 2 min, … up to 15 min."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    doublings = min(failures - FREE_FAILURES - 1, 10)
    return min(FIRST_DELAY * (2**doublings), MAX_DELAY)
