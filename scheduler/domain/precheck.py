"""Document pre-check rules: which data and documents each service needs, what a
couple may submit, and when. Pure: no I/O, ``now`` passed in.

What each party is asked (pre-entry fields) and brings (documents) is rule data
(scheduler/domain/rules.py), per service and party kind, from the rule set in force
on the appointment's day: under the 2025-05-10 set a mainland resident brings the
ID card and signs the declaration, no household register. Name, sex, birth date and
ethnicity are read from an 18-digit ID card at the counter; parties whose document
carries no birth date give it here. Every failure raises PrecheckInvalid with the
offending field and a stable reason slug (a translation key).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from scheduler.domain.rules import SEXES, RuleSet

STATUSES = ("not_submitted", "submitted", "approved", "needs_correction")
DECISIONS = ("approved", "needs_correction")
ROLES = ("a", "b")

EDUCATION = (
    "postgraduate",
    "bachelor",
    "associate",
    "vocational_secondary",
    "senior_secondary",
    "junior_secondary",
    "primary",
    "other",
)
# Before a marriage; a person still married cannot register another one.
MARITAL_STATUSES = ("unmarried", "divorced", "widowed")
NOTE_MAX = 500
OCCUPATION_MAX = 50
COUNTRIES_FILE = Path(__file__).resolve().parents[2] / "config" / "countries.json"


@cache
def countries() -> tuple[dict[str, str], ...]:
    """The nationality choices: ISO 3166-1 alpha-2 codes with names in three
    languages (config/countries.json), CN, HK, MO and TW first."""
    data = json.loads(COUNTRIES_FILE.read_text(encoding="utf-8"))
    return tuple(data["countries"])


@cache
def country_codes() -> frozenset[str]:
    return frozenset(c["code"] for c in countries())


class PrecheckInvalid(ValueError):
    def __init__(self, field: str, reason: str, others: tuple[PrecheckInvalid, ...] = ()) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        # Every problem found, this one first: the form shows them all at once.
        self.all: tuple[PrecheckInvalid, ...] = (self, *others)


def offered(rules: RuleSet, service: str) -> bool:
    return bool(rules.fields.get(service))


def required_documents(rules: RuleSet, service: str, kind: str) -> tuple[str, ...]:
    """The documents one party of ``kind`` brings, in checklist order."""
    return rules.checklist(service, kind) if offered(rules, service) else ()


@dataclass(frozen=True)
class PartyData:
    nationality: str = ""
    occupation: str = ""
    education: str = ""
    marital_status: str = ""
    hukou_address: str = ""  # asked only by rule sets before 2025-05-10; kept for old rows
    birth_date: date | None = None
    sex: str = ""
    documents: frozenset[str] = field(default_factory=frozenset)


def _text(raw: str) -> str:
    # NFKC: full-width letters and spaces from Chinese input methods are the same text.
    folded = unicodedata.normalize("NFKC", raw)
    return " ".join(folded.split())


def _bounded(value: str, name: str, maximum: int) -> str:
    if not value:
        raise PrecheckInvalid(name, "required")
    if len(value) > maximum or not value.isprintable():
        raise PrecheckInvalid(name, "text")
    return value


def clean_party(
    role: str, service: str, kind: str, raw: PartyData, rules: RuleSet, raw_birth: str = ""
) -> PartyData:
    """The party's data as stored, or PrecheckInvalid naming ``party_<role>.<field>``
    (and, in ``.all``, every other bad field too). Fields the rule set does not ask
    of this party kind are dropped, documents it does not list refused.
    ``raw_birth``: the birth date as typed (YYYY-MM-DD)."""
    asked = rules.fields_for(service, kind)
    prefix = f"party_{role}."
    problems: list[PrecheckInvalid] = []

    def check(clean: Callable[[], str]) -> str:
        try:
            return clean()
        except PrecheckInvalid as exc:
            problems.append(exc)
            return ""

    def nationality_of() -> str:
        value = _text(raw.nationality).upper()
        if value not in country_codes():
            raise PrecheckInvalid(prefix + "nationality", "nationality")
        return value

    def choice(name: str, value: str, allowed: tuple[str, ...]) -> Callable[[], str]:
        def clean() -> str:
            if value not in allowed:
                raise PrecheckInvalid(prefix + name, "choice")
            return value

        return clean

    nationality = check(nationality_of)
    occupation = education = marital = sex = ""
    born: date | None = None
    if "occupation" in asked:
        occupation = check(
            lambda: _bounded(_text(raw.occupation), prefix + "occupation", OCCUPATION_MAX)
        )
    if "education" in asked:
        education = check(choice("education", raw.education, EDUCATION))
    if "marital_status" in asked:
        marital = check(choice("marital_status", raw.marital_status, MARITAL_STATUSES))
    if "birth_date" in asked:
        try:
            born = raw.birth_date or date.fromisoformat(_text(raw_birth))
        except ValueError:
            problems.append(PrecheckInvalid(prefix + "birth_date", "date"))
    if "sex" in asked:
        sex = check(choice("sex", raw.sex, SEXES))
    if raw.documents - set(required_documents(rules, service, kind)):
        problems.append(PrecheckInvalid(prefix + "documents", "document"))
    if problems:
        first = problems[0]
        raise PrecheckInvalid(first.field, first.reason, tuple(problems[1:]))
    return PartyData(
        nationality=nationality,
        occupation=occupation,
        education=education,
        marital_status=marital,
        birth_date=born,
        sex=sex,
        documents=frozenset(raw.documents),
    )


def missing_documents(
    rules: RuleSet, service: str, kind: str, ticked: frozenset[str]
) -> tuple[str, ...]:
    """Documents not ticked: submitting is allowed (the clerk may advise), but both
    sides see them."""
    return tuple(d for d in required_documents(rules, service, kind) if d not in ticked)


def clean_note(decision: str, note: str) -> str:
    """The clerk's note: required when asking for a correction, at most NOTE_MAX."""
    if decision not in DECISIONS:
        raise PrecheckInvalid("decision", "choice")
    text = "\n".join(_text(line) for line in unicodedata.normalize("NFKC", note).splitlines())
    text = text.strip()
    if decision == "needs_correction" and not text:
        raise PrecheckInvalid("note", "note-required")
    if len(text) > NOTE_MAX or not text.replace("\n", "").isprintable():
        raise PrecheckInvalid("note", "text")
    return text


def submission_open(slot_day: date, now: datetime, tz: ZoneInfo) -> bool:
    """A couple submits or edits until the day before the appointment (office time):
    on the day itself the desk checks the originals, and a late change would not be
    reviewed in time."""
    return now.astimezone(tz).date() < slot_day


def after_submit(current: str, unchanged: bool) -> str:
    """The status a submission leads to. Any change after a review (approved or
    needs_correction) needs a new review; resending the approved data unchanged
    keeps the approval (a retried request must not undo the clerk's work)."""
    if current == "approved" and unchanged:
        return "approved"
    return "submitted"
