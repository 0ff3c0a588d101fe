"""The lottery's pure rules (scheduler/domain/lottery.py), no database: the seed
commitment, the documented shuffle (checked against an independent
re-implementation), reproducibility, seats and fairness."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.domain import lottery as rules

WINDOW = datetime(2027, 2, 2, 1, 0, tzinfo=UTC)


def seed_of(label: str) -> str:
    """Fixed, documented seeds: the tests cannot flake."""
    return hashlib.sha256(label.encode()).hexdigest()


def reference_shuffle(seed: str, references: list[str]) -> list[str]:
    """The algorithm as docs/decisions.md words it, written from the text alone."""
    words: list[int] = []
    block = 0

    def next_word() -> int:
        nonlocal block
        if not words:
            digest = hashlib.sha256(f"{seed}:{block}".encode("ascii")).digest()
            words.extend(int.from_bytes(digest[i : i + 8], "big") for i in range(0, 32, 8))
            block += 1
        return words.pop(0)

    def below(n: int) -> int:
        limit = 2**64 - (2**64 % n)
        while (x := next_word()) >= limit:
            pass
        return x % n

    items = sorted(references)
    for i in range(len(items) - 1, 0, -1):
        j = below(i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def one_room(free: int, office: int = 1) -> rules.Seats:
    return rules.Seats(
        rooms=[rules.Room(1, office, "09:00", WINDOW, free)],
        day_free={office: free},
        hall_free={(office, WINDOW): 2 * free},
    )


def entry(ref: str, *ids: str, prefs: tuple[rules.Preference, ...] | None = None) -> rules.Entry:
    return rules.Entry(
        reference=ref,
        id_hashes=ids or (f"{ref}-a", f"{ref}-b"),
        preferences=prefs or (rules.Preference(1, None),),
    )


def test_published_hash_is_sha256_of_the_seed() -> None:
    seed = seed_of("commitment")
    assert rules.commitment(seed) == hashlib.sha256(seed.encode()).hexdigest()
    assert rules.commitment(seed) != rules.commitment(seed_of("other"))
    assert rules.is_seed(seed) and not rules.is_seed(seed.upper()) and not rules.is_seed("ab")


def test_the_shuffle_is_the_documented_algorithm() -> None:
    refs = [f"LOT-{i:04d}-X" for i in range(257)]
    for label in ("a", "b", "c"):
        assert rules.draw_order(seed_of(label), refs) == reference_shuffle(seed_of(label), refs)


def test_reproducible_from_seed_and_applications_whatever_their_order() -> None:
    refs = [f"GZTH-{i:04d}" for i in range(500)]
    seed = seed_of("repro")
    first = rules.draw_order(seed, refs)
    assert rules.draw_order(seed, list(reversed(refs))) == first
    assert sorted(first) == sorted(refs)
    assert first != rules.draw_order(seed_of("another seed"), refs)
    # The winners follow from the order, the preferences and the seats alone.
    entries = {r: entry(r) for r in refs}
    once = rules.allocate([entries[r] for r in first], one_room(50))
    again = rules.allocate([entries[r] for r in rules.draw_order(seed, refs)], one_room(50))
    assert once == again and len(once.awards) == 50
    assert list(once.awards) == first[:50]


def test_a_bad_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        rules.draw_order("not-a-seed", ["x"])


def test_preferences_are_tried_in_order_and_any_time_takes_the_earliest() -> None:
    w = WINDOW
    seats = rules.Seats(
        rooms=[
            rules.Room(10, 1, "10:00", w, 1),
            rules.Room(11, 1, "09:00", w, 1),
            rules.Room(20, 2, "09:00", w, 1),
        ],
        day_free={1: 5, 2: 5},
        hall_free={(1, w): 10, (2, w): 10},
    )
    prefs_a = (rules.Preference(1, "10:00"), rules.Preference(2, None))
    prefs_b = (rules.Preference(1, "10:00"), rules.Preference(2, None))
    prefs_c = (rules.Preference(1, None),)
    prefs_d = (rules.Preference(1, None), rules.Preference(2, "09:00"))
    order = [
        entry("A", prefs=prefs_a),
        entry("B", prefs=prefs_b),
        entry("C", prefs=prefs_c),
        entry("D", prefs=prefs_d),
    ]
    result = rules.allocate(order, seats)
    assert result.awards == {"A": 10, "B": 20, "C": 11}
    assert result.waiting == ("D",)


def test_every_cap_bounds_the_seats() -> None:
    w2 = WINDOW + timedelta(hours=1)
    seats = rules.Seats(
        rooms=[rules.Room(1, 1, "09:00", WINDOW, 5), rules.Room(2, 1, "10:00", w2, 5)],
        day_free={1: 4},  # the office-day cap is tighter than the slots
        hall_free={(1, WINDOW): 4, (1, w2): 10},  # two couples in the 9 o'clock hall
    )
    result = rules.allocate([entry(f"R{i}") for i in range(10)], seats)
    slots = Counter(result.awards.values())
    assert slots == {1: 2, 2: 2}
    assert len(result.waiting) == 6


def test_no_id_wins_twice_and_booked_ids_cannot_win() -> None:
    order = [
        entry("A", "id-1", "id-2"),
        entry("B", "id-2", "id-3"),  # shares id-2 with A
        entry("C", "id-4", "id-5"),  # id-5 holds a marriage appointment already
        entry("D", "id-6", "id-7"),
    ]
    result = rules.allocate(order, one_room(10), already_booked=frozenset({"id-5"}))
    assert set(result.awards) == {"A", "D"}
    assert result.ineligible == {"B", "C"}


def test_window_rules() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    day = date(2027, 2, 14)
    win = rules.window(
        day, tz, opens_days_before=14, opens_at=time(9), closes_days_before=7, closes_at=time(20)
    )
    assert win.opens_at == datetime(2027, 1, 31, 1, 0, tzinfo=UTC)
    assert win.closes_at == datetime(2027, 2, 7, 12, 0, tzinfo=UTC)
    early = datetime(2027, 1, 1, tzinfo=UTC)
    assert rules.window_problems(day, tz, win, early, 48) == []
    assert rules.window_problems(day, tz, win, win.opens_at, 48)[0][1] == "lottery-opens-past"
    assert rules.window_problems(day, tz, win, early, 24 * 7)[0][1] == "lottery-confirm-too-late"
    backwards = rules.Window(opens_at=win.closes_at, closes_at=win.opens_at)
    assert rules.window_problems(day, tz, backwards, early, 1)[0][1] == "lottery-window-order"
    deadline = rules.confirm_deadline(win.closes_at, 48, day, tz)
    assert deadline == win.closes_at + timedelta(hours=48)
    assert rules.confirm_deadline(datetime(2027, 2, 13, tzinfo=UTC), 48, day, tz) == datetime(
        2027, 2, 13, 16, 0, tzinfo=UTC
    )
    assert rules.passing_on(datetime(2027, 2, 13, 15, 59, tzinfo=UTC), day, tz)
    assert not rules.passing_on(datetime(2027, 2, 13, 16, 0, tzinfo=UTC), day, tz)


# -- fairness ---------------------------------------------------------------------

APPLICANTS = 10_000
SEATS = 500
DRAWS = 100  # expected wins per applicant: 100 x 500 / 10,000 = 5
# Two-sided at alpha = 0.001 each side: too many differences means unfair, too few
# means not random (e.g. turns). Critical values by the Wilson-Hilferty
# approximation of the chi-square quantiles, z = 3.0902 (0.999 normal quantile).
Z = 3.0902


def chi_square_bounds(df: int) -> tuple[float, float]:
    c = 2 / (9 * df)
    return df * (1 - c - Z * math.sqrt(c)) ** 3, df * (1 - c + Z * math.sqrt(c)) ** 3


def test_each_applicant_has_the_same_chance() -> None:
    """10,000 applications for 500 seats, drawn 100 times with seeds fixed in
    advance: wins per applicant against the uniform expectation (chi-square,
    9,999 degrees of freedom), and no ID ever wins twice in a draw."""
    refs = [f"LOT-{i:05d}" for i in range(APPLICANTS)]
    entries = {r: entry(r) for r in refs}
    wins: Counter[str] = Counter()
    for k in range(DRAWS):
        order = rules.draw_order(seed_of(f"fairness-{k}"), refs)
        result = rules.allocate([entries[r] for r in order], one_room(SEATS))
        assert len(result.awards) == SEATS
        ids = [i for r in result.awards for i in entries[r].id_hashes]
        assert len(ids) == len(set(ids))
        wins.update(result.awards)
    # Each applicant's wins are binomial(DRAWS, p): the statistic divides by the
    # binomial variance DRAWS p (1 - p), not by the mean (which would expect a sum
    # of only 95% of the degrees of freedom, seats being drawn without replacement).
    p = SEATS / APPLICANTS
    expected = DRAWS * p
    statistic = sum((wins[r] - expected) ** 2 / (expected * (1 - p)) for r in refs)
    low, high = chi_square_bounds(APPLICANTS - 1)
    assert low < statistic < high, (low, statistic, high)
    # And the draw position: each applicant's chance of the first seat, by tenths of
    # the sorted references (a bias toward early or late references would show).
    firsts = Counter(
        int(rules.draw_order(seed_of(f"first-{k}"), refs[:1000])[0][4:]) // 100 for k in range(1000)
    )
    statistic = sum((firsts[g] - 100) ** 2 / 100 for g in range(10))
    low, high = chi_square_bounds(9)
    assert low < statistic < high, (low, statistic, high)
