"""Document pre-check rules: which data and documents each service needs, what a
couple may submit, and when. Pure: no I/O, ``now`` passed in.

The pre-entry data is what the registry's form asks beyond the ID card itself
(name, sex, birth date and ethnicity are read from the card at the counter):
nationality, occupation, education, marital status before a marriage, and the
household-register (户籍) address. Every failure raises PrecheckInvalid with the
offending field and a stable reason slug (a translation key).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

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

# Data fields each service's form asks of each party. Ceremony and counselling
# need no documents checked in advance: they have no pre-check.
FIELDS: dict[str, tuple[str, ...]] = {
    "marriage": ("nationality", "occupation", "education", "marital_status", "hukou_address"),
    "divorce": ("nationality", "occupation", "education", "hukou_address"),
    "reissue": ("nationality", "hukou_address"),
}
DOCUMENTS = (
    "id_card",
    "hukou_book",
    "no_spouse_statement",
    "photos",
    "marriage_certificate",
    "divorce_agreement",
    "declaration",
)
NOTE_MAX = 500
OCCUPATION_MAX = 50
ADDRESS_MAX = 120
_NATIONALITY = re.compile(r"[A-Z]{2}")


class PrecheckInvalid(ValueError):
    def __init__(self, field: str, reason: str, others: tuple[PrecheckInvalid, ...] = ()) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        # Every problem found, this one first: the form shows them all at once.
        self.all: tuple[PrecheckInvalid, ...] = (self, *others)


def offered(service: str) -> bool:
    return service in FIELDS


def required_documents(service: str, id_type: str) -> tuple[str, ...]:
    """The documents one party brings, in checklist order. The household register
    exists for mainland residents only; others (passport, HK/Macau/Taiwan permits)
    bring a sworn statement of having no spouse for a marriage instead."""
    if not offered(service):
        return ()
    mainland = id_type == "mainland_id"
    docs = ["id_card"]
    if mainland:
        docs.append("hukou_book")
    elif service == "marriage":
        docs.append("no_spouse_statement")
    docs.append("photos")
    if service == "divorce":
        docs += ["marriage_certificate", "divorce_agreement"]
    docs.append("declaration")
    return tuple(docs)


@dataclass(frozen=True)
class PartyData:
    nationality: str = ""
    occupation: str = ""
    education: str = ""
    marital_status: str = ""
    hukou_address: str = ""
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


def clean_party(role: str, service: str, id_type: str, raw: PartyData) -> PartyData:
    """The party's data as stored, or PrecheckInvalid naming ``party_<role>.<field>``
    (and, in ``.all``, every other bad field too). Fields the service does not ask
    are dropped, documents it does not need refused."""
    asked = FIELDS[service]
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
        if not _NATIONALITY.fullmatch(value):
            raise PrecheckInvalid(prefix + "nationality", "nationality")
        return value

    def choice(name: str, value: str, allowed: tuple[str, ...]) -> Callable[[], str]:
        def clean() -> str:
            if value not in allowed:
                raise PrecheckInvalid(prefix + name, "choice")
            return value

        return clean

    nationality = check(nationality_of)
    occupation = education = marital = ""
    if "occupation" in asked:
        occupation = check(
            lambda: _bounded(_text(raw.occupation), prefix + "occupation", OCCUPATION_MAX)
        )
    if "education" in asked:
        education = check(choice("education", raw.education, EDUCATION))
    if "marital_status" in asked:
        marital = check(choice("marital_status", raw.marital_status, MARITAL_STATUSES))
    address = check(
        lambda: _bounded(_text(raw.hukou_address), prefix + "hukou_address", ADDRESS_MAX)
    )
    if raw.documents - set(required_documents(service, id_type)):
        problems.append(PrecheckInvalid(prefix + "documents", "document"))
    if problems:
        first = problems[0]
        raise PrecheckInvalid(first.field, first.reason, tuple(problems[1:]))
    return PartyData(
        nationality=nationality,
        occupation=occupation,
        education=education,
        marital_status=marital,
        hukou_address=address,
        documents=frozenset(raw.documents),
    )


def missing_documents(service: str, id_type: str, ticked: frozenset[str]) -> tuple[str, ...]:
    """Documents not ticked: submitting is allowed (the clerk may advise, e.g. a
    household-register extract from the police station), but both sides see them."""
    return tuple(d for d in required_documents(service, id_type) if d not in ticked)


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
