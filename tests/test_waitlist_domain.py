"""Pure rules of the waiting list and of the rate-limit pre-filter (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from scheduler.domain import waitlist as rules
from scheduler.domain.ratelimits import Limit, Prefilter, retry_after, window_start

NOW = datetime(2027, 2, 10, 2, 0, tzinfo=UTC)


def slot(sid: int, office: int, hour: int, day_offset: int = 3) -> rules.FreeSlot:
    start = NOW.replace(hour=hour) + timedelta(days=day_offset)
    return rules.FreeSlot(id=sid, office_id=office, start_at=start, local_start=time(hour, 0))


def waiting(
    eid: int, offices: tuple[int, ...], window: tuple[str, str] | None = None
) -> rules.Waiting:
    parsed = rules.parse_time_range(*window) if window else None
    return rules.Waiting(
        eid,
        rules.Preference(offices, parsed[0] if parsed else None, parsed[1] if parsed else None),
    )


def test_next_offer_goes_to_the_first_couple_in_join_order_that_fits() -> None:
    free = [slot(1, 10, 9)]
    queue = [
        waiting(1, (11,)),
        waiting(2, (10,), ("14:00", "16:00")),
        waiting(3, (10,)),
        waiting(4, (10,)),
    ]
    pick = rules.next_offer(queue, free, NOW, 60)
    assert pick is not None and pick[0].entry_id == 3 and pick[1].id == 1


def test_most_wanted_office_first_then_earliest_time() -> None:
    free = [slot(1, 10, 9), slot(2, 11, 15), slot(3, 11, 10)]
    assert rules.choose_slot(rules.Preference((11, 10)), free) == free[2]
    assert rules.choose_slot(rules.Preference((10, 11)), free) == free[0]


def test_time_range_is_start_inclusive_end_exclusive() -> None:
    pref = rules.Preference((1,), time(10, 0), time(11, 0))
    assert pref.fits(1, time(10, 0)) and pref.fits(1, time(10, 30))
    assert not pref.fits(1, time(11, 0)) and not pref.fits(2, time(10, 0))


def test_no_offer_for_a_slot_starting_before_the_offer_would_lapse() -> None:
    soon = rules.FreeSlot(1, 10, NOW + timedelta(minutes=50), time(10, 50))
    assert rules.next_offer([waiting(1, (10,))], [soon], NOW, 60) is None
    assert rules.next_offer([waiting(1, (10,))], [soon], NOW, 30) is not None


@pytest.mark.parametrize(
    ("bounds", "field"),
    [
        (("10:00", None), "time_to"),
        ((None, "10:00"), "time_from"),
        (("11:00", "10:00"), "time_from"),
        (("10:00", "10:00"), "time_from"),
        (("25:00", "26:00"), "time_from"),
        (("9:00", "10:00"), "time_from"),
    ],
)
def test_bad_time_ranges(bounds: tuple[str | None, str | None], field: str) -> None:
    with pytest.raises(rules.InvalidRequest) as err:
        rules.parse_time_range(*bounds)
    assert err.value.field == field


def test_offices_and_days() -> None:
    assert rules.check_offices(["A", "B", "C"]) == ("A", "B", "C")
    for bad in ([], ["A", "A"], ["A", "B", "C", "D"]):
        with pytest.raises(rules.InvalidRequest):
            rules.check_offices(bad)
    today = date(2027, 2, 10)
    rules.check_day(today + timedelta(days=1), today, today + timedelta(days=30))
    for day, reason in ((today, "date-past"), (today + timedelta(days=31), "date-not-open")):
        with pytest.raises(rules.InvalidRequest) as err:
            rules.check_day(day, today, today + timedelta(days=30))
        assert err.value.reason == reason


def test_outcome_of_an_offer() -> None:
    assert rules.outcome_of_offer("pending_confirmation") is None
    assert rules.outcome_of_offer("expired") == "lapsed"
    assert rules.outcome_of_offer("cancelled") == "lapsed"
    assert rules.outcome_of_offer("confirmed") == "booked"
    assert rules.outcome_of_offer("checked_in") == "booked"


def test_windows_align_to_the_epoch() -> None:
    assert window_start(125.5, 60) == 120
    assert retry_after(125.5, 60) == 55
    assert retry_after(179.99, 60) == 1


def test_prefilter_refuses_only_past_the_limit_and_forgets_old_windows() -> None:
    limit = Limit(3, 60)
    pre = Prefilter()
    assert [pre.admit("k", limit, 100.0) for _ in range(4)] == [True, True, True, False]
    assert pre.admit("other", limit, 100.0)
    assert pre.admit("k", limit, 121.0)  # a new window
    pre.block("k", limit, 125.0)  # the shared store said no
    assert not pre.admit("k", limit, 126.0)
    assert pre.admit("k", limit, 181.0)  # until the window ends


def test_prefilter_memory_is_bounded() -> None:
    pre = Prefilter(max_keys=100)
    limit = Limit(5, 60)
    for n in range(1000):
        pre.admit(f"k{n}", limit, 100.0 + n)
    assert len(pre._hits) <= 100
