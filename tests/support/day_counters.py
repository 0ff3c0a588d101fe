"""The office-day counters as tests check them since issue 16: the true count of a
day (what its active appointments take, or the sum over its slots) is within its
cap always; the stored ``office_day.booked``/``held`` equal it only where the day's
row keeps the cap (the slot rows' ``day_covered``/``share_covered`` say so); and a
stored proof still holds for the rows as they are now."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any


async def check_days(true_booked: dict[tuple[int, date], int] | None = None) -> dict[str, int]:
    """Assert the invariants for every office_day row; ``true_booked`` (per (office,
    day), from the active appointments) defaults to the sums over the slots. Returns
    how many days were covered and how many kept by their row."""
    from scheduler.db.tables import OfficeDay, Slot
    from scheduler.domain.day_cover import SlotBound, day_covered

    by_day: dict[tuple[int, date], list[dict[str, Any]]] = defaultdict(list)
    for s in await Slot.select():
        by_day[(s["office"], s["day"])].append(s)
    seen = {"covered": 0, "kept": 0}
    for d in await OfficeDay.select():
        key = (d["office"], d["day"])
        slots = by_day.get(key, [])
        booked = sum(s["booked"] for s in slots)
        held = sum(s["held"] for s in slots)
        if true_booked is not None:
            assert booked == true_booked.get(key, 0), ("slots vs appointments", d, booked)
        assert 0 <= booked <= d["capacity"], ("day over its cap", d, booked)
        proofs = {(bool(s["day_covered"]), s["share_covered"]) for s in slots}
        assert len(proofs) <= 1, ("slots of one day disagree", d, proofs)
        covered, share = proofs.pop() if proofs else (False, None)
        if covered:
            seen["covered"] += 1
            bounds = [
                SlotBound(
                    max(s["booked"], s["capacity"], s["reduced_capacity"] or 0),
                    s["held"],
                    max(s["capacity"], s["reduced_capacity"] or 0),
                )
                for s in slots
            ]
            assert day_covered(d["capacity"], bounds), ("a stale proof", d)
        else:
            seen["kept"] += 1
            assert d["booked"] == booked, ("office_day", d, booked)
        if share is None:
            assert d["held"] == held, ("office_day held", d, held)
    return seen
