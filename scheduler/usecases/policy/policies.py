"""The policy store: typed, validated policies with defaults from the settings and
overrides in the database, each change audited (before and after).

Readers go through a small per-process cache, so the booking hot path and the SMS
dispatcher do not pay a query per request. **Staleness bound**: a process re-reads
the overrides when its copy is older than ``CACHE_SECONDS`` (one query for all
policies), on the next ``await current()``; the process that made a change reloads
at once after its commit. So a change takes effect everywhere within
``CACHE_SECONDS`` of being saved. Synchronous readers (``cached()``: SMS text rules
and quiet hours while a message is built) see the copy the last ``current()`` of
their process loaded. Notify never reads this module: ``sms_terms`` refreshes the
copy and hands the SMS terms (quiet hours, country rules, pace) to whoever queues
or sends a message.
"""

from __future__ import annotations

import json
import logging
import time as monotonic_clock
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

from scheduler.db import audit
from scheduler.db.engine import write_transaction
from scheduler.db.policy_tables import PolicyOverride
from scheduler.domain import policy as rules
from scheduler.domain.identity import phone_region
from scheduler.domain.policy import (
    IdTypes,
    NoShowRule,
    PolicyError,
    QuietHours,
    SmsCountries,
    SmsRate,
    quiet_hours_from,
)
from scheduler.domain.sms import CountryRule, apply_rule, violations
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import LOCALES
from scheduler.notify.terms import SmsTerms
from scheduler.notify.texts import TEMPLATES_DIR, file_rules, render_sms
from scheduler.settings import Settings

log = logging.getLogger("scheduler.policies")

CACHE_SECONDS = 5.0
NAMES = rules.NAMES


@dataclass(frozen=True)
class Snapshot:
    """The stored overrides, parsed (a policy absent here has its default)."""

    overrides: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    sms_rules: dict[str, CountryRule] | None = None  # precomputed for rule_for()

    def no_show(self) -> NoShowRule:
        value: NoShowRule = self.overrides.get("no_show", NoShowRule())
        return value

    def id_types(self) -> IdTypes:
        value: IdTypes = self.overrides.get("id_types", IdTypes())
        return value

    def quiet_hours(self, settings: Settings) -> tuple[time, time] | None:
        hours: QuietHours | None = self.overrides.get("sms_quiet_hours")
        return hours.window if hours is not None else settings.sms_quiet_hours

    def sms_rate(self, settings: Settings) -> float:
        rate: SmsRate | None = self.overrides.get("sms_rate")
        return rate.per_second if rate is not None else settings.sms_rate_per_second


_EMPTY = Snapshot()
_state: dict[str, Any] = {"snapshot": _EMPTY, "loaded_at": None}


def defaults(settings: Settings) -> dict[str, Any]:
    table = file_rules(settings.sms_rules_file)
    return {
        "no_show": NoShowRule(),
        "id_types": IdTypes(),
        "sms_quiet_hours": quiet_hours_from(settings.sms_quiet_hours),
        "sms_rate": SmsRate(settings.sms_rate_per_second),
        "sms_countries": SmsCountries(
            default=table["default"], countries={k: v for k, v in table.items() if k != "default"}
        ),
    }


def cached() -> Snapshot:
    """The process's copy, without a query (see the module's staleness bound)."""
    snapshot: Snapshot = _state["snapshot"]
    return snapshot


def sms_rules(settings: Settings) -> dict[str, CountryRule]:
    """The per-country SMS rules: as edited, else the settings' file."""
    return cached().sms_rules or file_rules(settings.sms_rules_file)


async def sms_terms(settings: Settings) -> SmsTerms:
    """What notify is told when it queues or sends a message (re-read as ``current``)."""
    snapshot = await current()
    return SmsTerms(
        countries=snapshot.sms_rules or file_rules(settings.sms_rules_file),
        quiet_hours=snapshot.quiet_hours(settings),
        rate_per_second=snapshot.sms_rate(settings),
        default_timezone=settings.default_timezone,
        validity_seconds=settings.sms_validity_seconds,
    )


async def current() -> Snapshot:
    """The policies, re-read when the copy is older than CACHE_SECONDS."""
    loaded_at = _state["loaded_at"]
    if loaded_at is None or monotonic_clock.monotonic() - loaded_at > CACHE_SECONDS:
        await reload()
    return cached()


async def reload() -> Snapshot:
    rows = await PolicyOverride.select().output(load_json=True)
    overrides, meta = {}, {}
    for row in rows:
        try:
            overrides[row["name"]] = rules.parse(row["name"], row["value"])
        except (PolicyError, KeyError):
            # Only this module writes the table, after the same check; a row that no
            # longer parses (a downgrade) must not stop bookings: its default applies.
            log.error("stored policy %r does not parse; using its default", row["name"])
            continue
        meta[row["name"]] = {"updated_at": row["updated_at"], "updated_by": row["updated_by"]}
    countries: SmsCountries | None = overrides.get("sms_countries")
    snapshot = Snapshot(overrides, meta, countries.table() if countries else None)
    _state.update(snapshot=snapshot, loaded_at=monotonic_clock.monotonic())
    return snapshot


def invalidate() -> None:
    """Forget the copy (tests: a new database)."""
    _state.update(snapshot=_EMPTY, loaded_at=None)


async def view(name: str, settings: Settings) -> dict[str, Any]:
    """One policy: its value in force, its default, and who changed it last."""
    if name not in NAMES:
        raise DomainError("not-found")
    snapshot = await current()
    default = defaults(settings)[name]
    value = snapshot.overrides.get(name, default)
    meta = snapshot.meta.get(name, {})
    return {
        "name": name,
        "value": value.to_json(),
        "default": default.to_json(),
        "overridden": name in snapshot.overrides,
        "updated_at": meta["updated_at"].isoformat() if meta.get("updated_at") else None,
        "updated_by": meta.get("updated_by"),
    }


async def view_all(settings: Settings) -> list[dict[str, Any]]:
    return [await view(name, settings) for name in NAMES]


def parse(name: str, raw: Any) -> Any:
    """The typed value, or 422 invalid-input naming the field (nothing is stored)."""
    if name not in NAMES:
        raise DomainError("not-found")
    try:
        value = rules.parse(name, raw)
        if isinstance(value, SmsCountries):
            _texts_fit(value)
    except PolicyError as exc:
        raise DomainError(
            "invalid-input", field=exc.field, reason=f"policy-{exc.reason}", **exc.params
        ) from exc
    return value


async def update(
    name: str,
    raw: Any,
    *,
    actor: audit.Actor,
    now: datetime,
    settings: Settings,
    ip: str | None = None,
) -> dict[str, Any]:
    """Replace policy ``name`` with ``raw`` (validated), audited in the same transaction."""
    value = parse(name, raw)
    after = value.to_json()
    default = defaults(settings)[name].to_json()
    async with write_transaction():
        # Read in the transaction: two admins saving at once each record what they replaced.
        stored = (
            await PolicyOverride.select(PolicyOverride.value)
            .where(PolicyOverride.name == name)
            .output(load_json=True)
            .first()
        )
        before = stored["value"] if stored is not None else default
        await PolicyOverride.insert(
            PolicyOverride(name=name, value=after, updated_at=now, updated_by=actor.username)
        ).on_conflict(
            target=PolicyOverride.name,
            action="DO UPDATE",
            values=[
                (PolicyOverride.value, json.dumps(after)),
                (PolicyOverride.updated_at, now),
                (PolicyOverride.updated_by, actor.username),
            ],
        )
        await audit.record(
            actor,
            "policy.update",
            object_type="policy",
            object_id=name,
            before=before,
            after=after,
            ip=ip,
            now=now,
        )
    await reload()  # this process sees its own change at once
    return await view(name, settings)


# --- consumers' small helpers ----------------------------------------------------------


def phone_regions(snapshot: Snapshot, office_codes: list[str]) -> tuple[str, ...]:
    """The regions whose phones may book at every one of these offices."""
    countries: SmsCountries = snapshot.overrides.get("sms_countries") or SmsCountries()
    lists = [set(countries.regions_for(code)) for code in office_codes]
    allowed = set.intersection(*lists) if lists else set(countries.booking_regions)
    return tuple(sorted(allowed))


def refuse_phone_regions(
    snapshot: Snapshot, office_codes: list[str], parties: list[tuple[str, str]]
) -> None:
    """422 naming the first party whose phone is of a region these offices do not
    accept (no code is texted there). ``parties``: (role, E.164 phone)."""
    allowed = phone_regions(snapshot, office_codes)
    for role, phone in parties:
        if phone_region(phone) not in allowed:
            raise DomainError(
                "invalid-input",
                field=f"party_{role}.phone",
                reason="phone-region-refused",
                regions=", ".join(allowed),
            )


def refuse_id_types(snapshot: Snapshot, service: str, parties: list[tuple[str, str]]) -> None:
    """422 naming the first party whose ID type the policy does not accept for ``service``.
    ``parties``: (role, id_type)."""
    accepted = snapshot.id_types().for_service(service)
    for role, id_type in parties:
        if id_type not in accepted:
            raise DomainError(
                "invalid-input", field=f"party_{role}.id_type", reason="policy-id-type-refused"
            )


# A payload with every variable any SMS template uses, at realistic lengths (the
# longest office name of the demo offices), to check new rules against every text.
SAMPLE = {
    "code": "123456",
    "reference": "GZTH-7K4Q-9M2X",
    "minutes": 15,
    "office": "广州市天河区婚姻登记处",
    "date": "2027-02-14",
    "start": "09:30",
    "label": "M012",
    "old": "02-02 09:30",
    "new": "02-03 09:30",
    "reason": "疫情防控",
    "counter": "12",
    "service": "marriage",
    "note": "请补交照片",
    "bring": "港澳台身份证、居住证、公证的无配偶声明、2寸合照3张",
}


def _texts_fit(countries: SmsCountries) -> None:
    """Refuse rules under which one of today's SMS texts could not be sent (too long,
    or a link where links are banned): the rule would silently break those messages."""
    templates = sorted(p.stem for p in Path(TEMPLATES_DIR / "sms" / "zh-Hans").glob("*.txt"))
    for code, rule in countries.table().items():
        for template in templates:
            for locale in LOCALES:
                try:
                    text = apply_rule(render_sms(template, locale, SAMPLE), rule)
                except Exception:  # noqa: S112 - a template needing a variable SAMPLE lacks
                    continue
                if violations(text, rule):
                    where = "default" if code == "default" else f"countries.{code}"
                    problem = violations(text, rule)[0]
                    field_name = "max_segments" if problem == "too-long" else "allow_urls"
                    raise PolicyError(f"{where}.{field_name}", f"sms-{problem}", template=template)
