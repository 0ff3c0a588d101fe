"""Rule sets of the registration law as data, and the eligibility rules that read them.

A rule set (config/rules/*.json, or a version a superadmin added) names its
jurisdiction, the day it takes effect and its legal source, and says per service
and per party kind: the documents to bring (labels in three languages), the
pre-entry fields asked, the minimum marriage ages and which party kinds only a
designated office may serve. The set in force on the appointment's local day
applies. Pure: no I/O, ``today`` passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from scheduler.domain.identity import mainland_id_birth_date
from scheduler.domain.services import SERVICES

LOCALES = ("zh-Hans", "zh-Hant", "en")
# mainland resident, Hong Kong/Macau resident, Taiwan resident, foreigner (any
# passport: overseas Chinese register at the same designated offices), and the
# holder of a residence permit for Hong Kong, Macau or Taiwan residents.
KINDS = ("mainland", "hk_macau", "taiwan", "foreign", "residence_permit")
FIELDS = (
    "nationality",
    "occupation",
    "education",
    "marital_status",
    "birth_date",
    "sex",
)
SEXES = ("male", "female")
# GB 32100-style prefixes of residence permits for HK (81), Macau (82), Taiwan (83)
# residents: same format and checksum as a resident ID card, different person.
RESIDENCE_PERMIT_PREFIXES = ("81", "82", "83")
_KIND_OF_TYPE = {"hk_macau_permit": "hk_macau", "taiwan_permit": "taiwan", "passport": "foreign"}


class RuleSetInvalid(ValueError):
    """A rule set document that cannot be used; ``field`` points into it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Ineligible(ValueError):
    """A party the rules refuse: ``field`` names the party's input, ``reason`` the rule."""

    def __init__(self, field: str, reason: str, **params: Any) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class RuleSet:
    jurisdiction: str
    effective_from: date
    source: Mapping[str, str]
    note: Mapping[str, str]
    min_age: Mapping[str, Mapping[str, int]]
    designated_kinds: Mapping[str, tuple[str, ...]]
    documents: Mapping[str, Mapping[str, Any]]
    checklists: Mapping[str, Mapping[str, tuple[str, ...]]]
    fields: Mapping[str, Mapping[str, tuple[str, ...]]]
    raw: Mapping[str, Any]

    def checklist(self, service: str, kind: str) -> tuple[str, ...]:
        return self.checklists.get(service, {}).get(kind, ())

    def labels(self, service: str, kind: str, locale: str) -> list[str]:
        return [self.documents[d][locale] for d in self.checklist(service, kind)]

    def sms_bring(self, service: str, kind: str, locale: str) -> str:
        """What to bring in a few words, for an SMS (documents with an ``sms`` name)."""
        names = [
            self.documents[d]["sms"][locale]
            for d in self.checklist(service, kind)
            if "sms" in self.documents[d]
        ]
        return ("、" if locale != "en" else ", ").join(names)

    def fields_for(self, service: str, kind: str) -> tuple[str, ...]:
        return self.fields.get(service, {}).get(kind, ())

    def needs_designated(self, service: str, kind: str) -> bool:
        return kind in self.designated_kinds.get(service, ())


def party_kind(id_type: str, id_number: str) -> str:
    """The party kind of an ID. ``id_number`` may be the normalised number or its
    mask: identity.mask_id keeps the first characters of an 18-character number,
    which is all this reads."""
    if id_type == "mainland_id":
        return "residence_permit" if id_number[:2] in RESIDENCE_PERMIT_PREFIXES else "mainland"
    return _KIND_OF_TYPE.get(id_type, "foreign")


def birth_and_sex(id_type: str, id_number: str) -> tuple[date, str] | None:
    """Birth date and sex read from an 18-character ID (resident card or residence
    permit: digits 7-14 and the parity of the 17th, GB 11643-1999); None for
    documents that carry neither."""
    if id_type != "mainland_id":
        return None
    born = mainland_id_birth_date(id_number)
    return born, ("male" if int(id_number[16]) % 2 else "female")


def age_on(born: date, day: date) -> int:
    """Completed years on ``day``. A person born on 29 February completes a year on
    1 March in common years; the birthday itself counts (生日当天可以受理)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_birth(
    rules: RuleSet, service: str, field: str, born: date, sex: str, day: date, today: date
) -> None:
    """Refuse a birth date after ``today`` (impossible) and, for a service with a
    minimum age, a party younger than it on the appointment's ``day``."""
    if born > today:
        raise Ineligible(field, "birth-date-future")
    minimum = rules.min_age.get(service, {}).get(sex)
    if minimum is not None and age_on(born, day) < minimum:
        raise Ineligible(field, f"under-age-{sex}", age=minimum)


def check_parties(
    rules: RuleSet,
    service: str,
    parties: Iterable[tuple[str, str, str]],
    day: date,
    today: date,
) -> None:
    """Eligibility of a couple at entry (booking, lottery application, waiting list):
    ``parties`` are (role, id_type, normalised number). Parties whose document carries
    no birth date are checked when their pre-check gives one."""
    for role, id_type, number in parties:
        known = birth_and_sex(id_type, number)
        if known is not None:
            check_birth(rules, service, f"party_{role}.id_number", *known, day, today)


def refused_kinds(
    rules: RuleSet, service: str, kinds: Iterable[tuple[str, str]], designated: bool
) -> list[str]:
    """Roles of the parties an office may not serve: ``kinds`` are (role, kind)."""
    if designated:
        return []
    return [role for role, kind in kinds if rules.needs_designated(service, kind)]


def in_force(sets: Sequence[RuleSet], jurisdiction: str, day: date) -> RuleSet:
    """The latest set of ``jurisdiction`` that took effect on or before ``day``; the
    earliest one for a day before them all (nothing older is known)."""
    mine = sorted(
        (s for s in sets if s.jurisdiction == jurisdiction), key=lambda s: s.effective_from
    )
    if not mine:
        raise LookupError(f"no rule set for {jurisdiction}")
    current = mine[0]
    for candidate in mine:
        if candidate.effective_from <= day:
            current = candidate
    return current


# --------------------------------------------------------------------- parsing


def _texts(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise RuleSetInvalid(field, "texts")
    for locale in LOCALES:
        text = value.get(locale)
        if not isinstance(text, str) or not text.strip() or len(text) > 500:
            raise RuleSetInvalid(f"{field}.{locale}", "text")
    return {locale: value[locale] for locale in LOCALES}


def _ids(value: Any, field: str, allowed: Iterable[str], reason: str) -> tuple[str, ...]:
    allowed = set(allowed)
    if not isinstance(value, list):
        raise RuleSetInvalid(field, "list")
    for i, item in enumerate(value):
        if item not in allowed:
            raise RuleSetInvalid(f"{field}[{i}]", reason)
    return tuple(value)


def _table(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RuleSetInvalid(field, "object")
    return value


def parse(doc: Mapping[str, Any]) -> RuleSet:
    """A rule set from its JSON document, or RuleSetInvalid naming the first bad field."""
    jurisdiction = doc.get("jurisdiction")
    if not isinstance(jurisdiction, str) or not 2 <= len(jurisdiction) <= 16:
        raise RuleSetInvalid("jurisdiction", "text")
    try:
        effective = date.fromisoformat(str(doc.get("effective_from")))
    except ValueError as exc:
        raise RuleSetInvalid("effective_from", "date") from exc
    documents: dict[str, dict[str, Any]] = {}
    for key, value in _table(doc.get("documents"), "documents").items():
        where = f"documents.{key}"
        labels: dict[str, Any] = _texts(value, where)
        if "sms" in _table(value, where):
            labels["sms"] = _texts(value["sms"], where + ".sms")
        documents[key] = labels
    checklists = {
        service: {
            kind: _ids(docs, f"checklists.{service}.{kind}", documents, "document")
            for kind, docs in _table(per_kind, f"checklists.{service}").items()
        }
        for service, per_kind in _table(doc.get("checklists"), "checklists").items()
    }
    fields = {
        service: {
            kind: _ids(names, f"fields.{service}.{kind}", FIELDS, "field")
            for kind, names in _table(per_kind, f"fields.{service}").items()
        }
        for service, per_kind in _table(doc.get("fields", {}), "fields").items()
    }
    for where, table in (("checklists", checklists), ("fields", fields)):
        for service, per_kind in table.items():
            if service not in SERVICES:
                raise RuleSetInvalid(f"{where}.{service}", "service")
            for kind in per_kind:
                if kind not in KINDS:
                    raise RuleSetInvalid(f"{where}.{service}.{kind}", "kind")
    min_age: dict[str, dict[str, int]] = {}
    for service, ages in _table(doc.get("min_age", {}), "min_age").items():
        min_age[service] = {}
        for sex, years in _table(ages, f"min_age.{service}").items():
            if sex not in SEXES or not isinstance(years, int) or not 0 < years < 100:
                raise RuleSetInvalid(f"min_age.{service}.{sex}", "age")
            min_age[service][sex] = years
    designated = {
        service: _ids(kinds, f"designated_kinds.{service}", KINDS, "kind")
        for service, kinds in _table(doc.get("designated_kinds", {}), "designated_kinds").items()
    }
    return RuleSet(
        jurisdiction=jurisdiction,
        effective_from=effective,
        source=_texts(doc.get("source"), "source"),
        note=_texts(doc["note"], "note") if "note" in doc else {},
        min_age=min_age,
        designated_kinds=designated,
        documents=documents,
        checklists=checklists,
        fields=fields,
        raw=dict(doc),
    )
