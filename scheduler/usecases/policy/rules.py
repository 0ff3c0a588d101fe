"""The rule sets in force: the shipped ones (config/rules/*.json, versioned with the
code) plus the versions a superadmin added (table ``rule_set_version``), and the
checks booking, the lottery and the waiting list make with them at entry.

Readers go through a per-process cache re-read after ``CACHE_SECONDS`` (one query),
like the policies: a new version applies everywhere within that bound, and the
booking hot path pays no query of its own. Rule sets take effect on a day, so a
version added for a future day is picked up long before it matters.
"""

from __future__ import annotations

import json
import logging
import time as monotonic_clock
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit
from scheduler.db.engine import is_unique_violation, write_transaction
from scheduler.db.rule_tables import RuleSetVersion
from scheduler.db.tables import Office, OfficeService, Party
from scheduler.domain import rules as domain
from scheduler.domain.rules import Ineligible, RuleSet, RuleSetInvalid
from scheduler.kernel.errors import DomainError

log = logging.getLogger("scheduler.rules")

RULES_DIR = Path(__file__).resolve().parents[3] / "config" / "rules"
# The jurisdiction of every office today: the service runs in Guangdong. An office
# in another province would carry its own code (a column when that day comes).
JURISDICTION = "CN-GD"
CACHE_SECONDS = 5.0
_state: dict[str, Any] = {"added": [], "loaded_at": None}


@cache
def shipped() -> tuple[RuleSet, ...]:
    """The rule sets of config/rules/; a file that does not parse stops the start."""
    return tuple(
        domain.parse(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(RULES_DIR.glob("*.json"))
    )


async def reload() -> None:
    rows = await RuleSetVersion.select().order_by(RuleSetVersion.id).output(load_json=True)
    added = []
    for row in rows:
        try:
            added.append((domain.parse(row["body"]), row))
        except RuleSetInvalid:
            # Written only after the same check; a downgrade must not stop bookings.
            log.error("stored rule set %s does not parse; ignored", row["id"])
    _state["added"] = added
    _state["loaded_at"] = monotonic_clock.monotonic()


async def all_sets() -> list[tuple[RuleSet, dict[str, Any] | None]]:
    """Every known set with its stored row (None: shipped), oldest effective first."""
    loaded_at = _state["loaded_at"]
    if loaded_at is None or monotonic_clock.monotonic() - loaded_at > CACHE_SECONDS:
        await reload()
    merged: dict[tuple[str, date], tuple[RuleSet, dict[str, Any] | None]] = {
        (s.jurisdiction, s.effective_from): (s, None) for s in shipped()
    }
    for rule_set, row in _state["added"]:
        # An added version for the same day as a shipped one replaces it (a correction).
        merged[(rule_set.jurisdiction, rule_set.effective_from)] = (rule_set, row)
    return sorted(merged.values(), key=lambda pair: (pair[0].jurisdiction, pair[0].effective_from))


async def for_day(day: date, jurisdiction: str = JURISDICTION) -> RuleSet:
    return domain.in_force([s for s, _ in await all_sets()], jurisdiction, day)


# --------------------------------------------------------------------- entry checks


def _eligibility_error(exc: Ineligible) -> DomainError:
    role = exc.field.split(".")[0].removeprefix("party_")
    return DomainError(
        "invalid-input", field=exc.field, reason=exc.reason, party=role.upper(), **exc.params
    )


async def designated_offices(service: str) -> list[str]:
    """Codes of the active offices designated for parties that need one, offering
    ``service``: what a refused couple can book instead."""
    offering = OfficeService.select(OfficeService.office).where(
        (OfficeService.service == service) & (OfficeService.active == True)  # noqa: E712
    )
    rows = (
        await Office.select(Office.code)
        .where((Office.designated == True) & (Office.active == True))  # noqa: E712
        .where(Office.id.is_in(offering))
        .order_by(Office.code)
    )
    return [r["code"] for r in rows]


async def admit(
    service: str,
    day: date,
    parties: Iterable[tuple[str, str, str]],
    now: datetime,
    *,
    tz: ZoneInfo,
    designated: bool,
) -> None:
    """The rule set's entry checks for a couple coming on ``day`` to an office in
    ``tz``, ``designated`` or not for foreign-related registrations:
    impossible birth dates and under-age parties (422 naming the party's field and
    the rule), then party kinds the office may not serve (409 office-not-designated
    with the offices that may). ``parties``: (role, id_type, normalised number)."""
    parties = list(parties)
    rule_set = await for_day(day)
    today = now.astimezone(tz).date()
    try:
        domain.check_parties(rule_set, service, parties, day, today)
    except Ineligible as exc:
        raise _eligibility_error(exc) from exc
    kinds = [(role, domain.party_kind(id_type, number)) for role, id_type, number in parties]
    refused = domain.refused_kinds(rule_set, service, kinds, designated)
    if refused:
        offices = await designated_offices(service)
        raise DomainError(
            "office-not-designated",
            field=f"party_{refused[0]}.id_type",
            offices=offices,
            office_list=", ".join(offices) or "-",
        )


def check_precheck_birth(
    rule_set: RuleSet, service: str, role: str, born: date, sex: str, day: date, today: date
) -> None:
    """A birth date the pre-check gave, for a party whose document has none."""
    try:
        domain.check_birth(rule_set, service, f"party_{role}.birth_date", born, sex, day, today)
    except Ineligible as exc:
        raise _eligibility_error(exc) from exc


async def checklist(service: str, day: date, parties: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What each partner brings, from the set in force on ``day``, labels in every
    locale: the confirmation and manage pages and the API show it. ``parties`` as
    stored (the mask keeps what party_kind reads)."""
    rule_set = await for_day(day)
    return {
        "effective_from": rule_set.effective_from.isoformat(),
        "source": dict(rule_set.source),
        "parties": [
            {
                "role": p["role"],
                "kind": (kind := domain.party_kind(p["id_type"], p["id_masked"])),
                "documents": [
                    {"key": d, "label": {loc: rule_set.documents[d][loc] for loc in domain.LOCALES}}
                    for d in rule_set.checklist(service, kind)
                ],
            }
            for p in parties
        ],
    }


async def office_limits(appointments: Iterable[dict[str, Any]]) -> dict[int, frozenset[int]]:
    """For the appointments (id, service, ``slot.day``) whose couple has a party that
    only a designated office may serve: the active designated offices. A blackout's
    move to another office of the region must stay among them."""
    rows = list(appointments)
    # Ids inlined (int() on ids from the database): a reschedule batch names 500,
    # and Piccolo's per-parameter work cost more than the read (docs/performance.md).
    ids = ", ".join(str(int(a["id"])) for a in rows) or "-1"
    kinds: dict[int, list[str]] = {}
    for p in await Party.raw(
        f"SELECT appointment, id_type, id_masked FROM party WHERE appointment IN ({ids})"  # noqa: S608
    ):
        kinds.setdefault(p["appointment"], []).append(
            domain.party_kind(p["id_type"], p["id_masked"])
        )
    in_force: dict[date, RuleSet] = {}  # one look-up per day, not per couple
    bound = []
    for a in rows:
        day = a["slot.day"]
        rule_set = in_force.get(day) or in_force.setdefault(day, await for_day(day))
        if any(rule_set.needs_designated(a["service"], k) for k in kinds.get(a["id"], [])):
            bound.append(a["id"])
    if not bound:
        return {}
    designated = frozenset(
        r["id"]
        for r in await Office.select(Office.id).where(
            (Office.designated == True) & (Office.active == True)  # noqa: E712
        )
    )
    return dict.fromkeys(bound, designated)


# --------------------------------------------------------------------- admin


def version_view(rule_set: RuleSet, row: dict[str, Any] | None, today: date) -> dict[str, Any]:
    return {
        "jurisdiction": rule_set.jurisdiction,
        "effective_from": rule_set.effective_from.isoformat(),
        "source": dict(rule_set.source),
        "origin": "added" if row else "shipped",
        "created_by": row["created_by"] if row else None,
        "created_at": row["created_at"].isoformat() if row else None,
        "future": rule_set.effective_from > today,
        "body": dict(rule_set.raw),
    }


async def listed(now: datetime) -> dict[str, Any]:
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    sets = await all_sets()
    current = await for_day(today)
    return {
        "in_force": current.effective_from.isoformat(),
        "versions": [version_view(s, row, today) for s, row in sets],
    }


async def add_version(
    doc: dict[str, Any], actor: Any, *, ip: str | None, now: datetime
) -> dict[str, Any]:
    """Store a new version (superadmin). It takes effect on its ``effective_from``,
    which may not be in the past: appointments already made were checked under the
    set in force for their day, and a rule cannot change retroactively."""
    try:
        rule_set = domain.parse(doc)
    except RuleSetInvalid as exc:
        raise DomainError("invalid-input", field=exc.field, reason="rule-set") from exc
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    if rule_set.effective_from < today:
        raise DomainError("invalid-input", field="effective_from", reason="rule-set-past")
    try:
        async with write_transaction():
            rows = await RuleSetVersion.insert(
                RuleSetVersion(
                    jurisdiction=rule_set.jurisdiction,
                    effective_from=rule_set.effective_from,
                    body=doc,
                    created_by=actor.username[:64],
                    created_at=now,
                )
            ).returning(RuleSetVersion.id)
            await audit.record(
                actor,
                "rules.add_version",
                object_type="rule_set",
                object_id=f"{rule_set.jurisdiction}:{rule_set.effective_from.isoformat()}",
                after={"id": rows[0]["id"], "source": dict(rule_set.source)},
                ip=ip,
                now=now,
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise DomainError("rule-set-exists", field="effective_from") from exc
        raise
    await reload()  # this process sees its own change at once
    return version_view(rule_set, {"created_by": actor.username, "created_at": now}, today)


def invalidate() -> None:
    """Forget the added versions (tests: a new database)."""
    _state.update(added=[], loaded_at=None)
