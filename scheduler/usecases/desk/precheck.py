"""Document pre-check use cases: the couple submits (or corrects) their pre-entry
data and document checklist; a clerk approves it or asks for a correction, which
both partners learn by SMS. One transaction each.

A submission and a review race safely: the review is a conditional UPDATE on the
status ``submitted`` and on the version the clerk read, so a clerk never approves
data they have not seen, and two clerks never both review the same version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db import audit
from scheduler.db.appointments import ACTIVE_STATUSES, Loaded, load, load_for_owner, masked_party
from scheduler.db.engine import write_transaction
from scheduler.db.precheck_tables import Precheck, PrecheckParty
from scheduler.db.records import OfficeRecord, PartyRecord, party_of
from scheduler.db.tables import Appointment, Party
from scheduler.domain.precheck import (
    ROLES,
    STATUSES,
    PartyData,
    PrecheckInvalid,
    after_submit,
    clean_note,
    clean_party,
    missing_documents,
    offered,
    required_documents,
    submission_open,
)
from scheduler.domain.rules import FIELDS as FIELD_ORDER
from scheduler.domain.rules import RuleSet, party_kind
from scheduler.kernel.errors import DomainError
from scheduler.settings import Settings
from scheduler.usecases.couples.texting import notify_couple
from scheduler.usecases.policy import rules as registry_rules

# A couple waiting for a new time after a blackout still prepares its documents.
OPEN_STATUSES = (*ACTIVE_STATUSES, "needs_rebooking")
SMS_TEMPLATES = {
    "approved": "precheck_approved",
    "needs_correction": "precheck_needs_correction",
}


@dataclass(frozen=True)
class Submission:
    party_a: PartyData
    party_b: PartyData
    # Birth dates as typed (YYYY-MM-DD), checked where the rule set asks for one.
    birth_a: str = ""
    birth_b: str = ""

    def of(self, role: str) -> PartyData:
        return self.party_a if role == "a" else self.party_b

    def birth(self, role: str) -> str:
        return self.birth_a if role == "a" else self.birth_b


def _invalid(exc: PrecheckInvalid) -> DomainError:
    return DomainError("invalid-input", field=exc.field, reason=f"precheck-{exc.reason}")


def _reference(reference: str) -> str:
    # A reference with control characters cannot exist (and PostgreSQL refuses NULs).
    if not reference.isprintable():
        raise DomainError("not-found")
    return reference


async def _row(appointment_id: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await Precheck.select().where(Precheck.appointment == appointment_id).first()
    )
    return row


async def _stored(precheck_id: int) -> dict[str, PartyData]:
    rows = (
        await PrecheckParty.select()
        .where(PrecheckParty.precheck == precheck_id)
        .output(load_json=True)
    )
    return {
        r["role"]: PartyData(
            nationality=r["nationality"],
            occupation=r["occupation"],
            education=r["education"],
            marital_status=r["marital_status"],
            hukou_address=r["hukou_address"],
            birth_date=r["birth_date"],
            sex=r["sex"],
            documents=frozenset(r["documents"] or ()),
        )
        for r in rows
    }


def kind_of(party: PartyRecord) -> str:
    # The mask keeps the first characters of an 18-digit number: all party_kind reads.
    return party_kind(party.id_type, party.id_masked)


async def rules_of(loaded: Loaded) -> RuleSet:
    """The rule set in force on the appointment's day."""
    return await registry_rules.for_day(loaded.slot.day)


def _editable(loaded: Loaded, rule_set: RuleSet, now: datetime) -> bool:
    return (
        offered(rule_set, loaded.appointment.service)
        and loaded.appointment.status in OPEN_STATUSES
        and submission_open(loaded.slot.day, now, loaded.tz)
    )


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value else None


def _party_view(
    rule_set: RuleSet, service: str, party: PartyRecord, data: PartyData | None
) -> dict[str, Any]:
    ticked = data.documents if data else frozenset()
    kind = kind_of(party)
    return masked_party(party) | {
        "kind": kind,
        "fields": list(rule_set.fields_for(service, kind)),
        "birth_date": data.birth_date.isoformat() if data and data.birth_date else "",
        "sex": data.sex if data else "",
        "nationality": data.nationality if data else "",
        "occupation": data.occupation if data else "",
        "education": data.education if data else "",
        "marital_status": data.marital_status if data else "",
        "hukou_address": data.hukou_address if data else "",
        "documents": sorted(ticked),
        "required_documents": list(required_documents(rule_set, service, kind)),
        "missing_documents": list(missing_documents(rule_set, service, kind, ticked)),
        "document_labels": {
            d: {loc: rule_set.documents[d][loc] for loc in ("zh-Hans", "zh-Hant", "en")}
            for d in required_documents(rule_set, service, kind)
        },
    }


async def _view(loaded: Loaded, now: datetime) -> dict[str, Any]:
    service, tz = loaded.appointment.service, loaded.tz
    row = await _row(loaded.id)
    stored = await _stored(row["id"]) if row else {}
    rule_set = await rules_of(loaded)
    return {
        "reference": loaded.appointment.reference,
        "service": service,
        "offered": offered(rule_set, service),
        "appointment_status": loaded.appointment.status,
        "date": loaded.slot.day.isoformat(),
        "start": loaded.slot.start_at.astimezone(tz).strftime("%H:%M"),
        "status": row["status"] if row else "not_submitted",
        "version": row["version"] if row else 0,
        "note": row["note"] if row else "",
        "reviewed_at": _iso(row["reviewed_at"], tz) if row else None,
        "submitted_at": _iso(row["submitted_at"], tz) if row else None,
        "editable": _editable(loaded, rule_set, now),
        "rule_set": rule_set.effective_from.isoformat(),
        # Every field either party is asked (each party's own list is in "parties").
        "fields": [
            f
            for f in FIELD_ORDER
            if any(f in rule_set.fields_for(service, kind_of(p)) for p in loaded.parties)
        ],
        "parties": [
            _party_view(rule_set, service, p, stored.get(p.role)) for p in loaded.parties
        ],
    }


async def view(reference: str, token: str | None, *, now: datetime) -> dict[str, Any]:
    """The couple's pre-check (404 alike for an unknown reference and a wrong token)."""
    return await _view(await load_for_owner(_reference(reference), token), now)


async def submit(
    reference: str, token: str | None, submission: Submission, *, now: datetime
) -> dict[str, Any]:
    """Submit or update the pre-check. Allowed while the appointment is active and
    before its day; any change after a review asks for a new one."""
    async with write_transaction():
        loaded = await load_for_owner(_reference(reference), token)
        service = loaded.appointment.service
        rule_set = await rules_of(loaded)
        if not offered(rule_set, service):
            raise DomainError("precheck-not-offered")
        if loaded.appointment.status not in OPEN_STATUSES:
            raise DomainError("precheck-closed", reason="status")
        if not submission_open(loaded.slot.day, now, loaded.tz):
            raise DomainError("precheck-closed", reason="day")
        cleaned, problems = {}, []
        for role in ROLES:
            try:
                cleaned[role] = clean_party(
                    role,
                    service,
                    kind_of(loaded.party(role)),
                    submission.of(role),
                    rule_set,
                    submission.birth(role),
                )
            except PrecheckInvalid as exc:
                problems += [_invalid(each) for each in exc.all]
        if problems:
            raise DomainError.all_of(problems)  # both partners' problems at once
        day = loaded.slot.day
        for role in ROLES:
            data = cleaned[role]
            if data.birth_date is not None:
                # A birth date the ID does not carry: the booking's age rule, here.
                registry_rules.check_precheck_birth(
                    rule_set,
                    service,
                    role,
                    data.birth_date,
                    data.sex,
                    day,
                    now.astimezone(loaded.tz).date(),
                )
        await _save(loaded.id, cleaned, now)
    return await _view(loaded, now)


def _values(data: PartyData) -> dict[str, Any]:
    return {
        "nationality": data.nationality,
        "occupation": data.occupation,
        "education": data.education,
        "marital_status": data.marital_status,
        "hukou_address": data.hukou_address,
        "birth_date": data.birth_date,
        "sex": data.sex,
        "documents": json.dumps(sorted(data.documents)),
    }


async def _save(appointment_id: int, cleaned: dict[str, PartyData], now: datetime) -> None:
    created = (
        await Precheck.insert(
            Precheck(appointment=appointment_id, status="submitted", version=1, submitted_at=now)
        )
        .on_conflict(action="DO NOTHING")
        .returning(Precheck.id)
    )
    if created:
        await PrecheckParty.insert(
            *(
                PrecheckParty(precheck=created[0]["id"], role=role, **_values(cleaned[role]))
                for role in ROLES
            )
        )
        return
    # A no-op UPDATE takes the row lock on PostgreSQL: a second submission of the
    # same couple (or a review) waits here until this one commits.
    locked = await Precheck.raw(
        "UPDATE precheck SET version = version WHERE appointment = {}"
        " RETURNING id, status, version",
        appointment_id,
    )
    current = locked[0]
    stored = await _stored(current["id"])
    unchanged = all(stored.get(role) == cleaned[role] for role in ROLES)
    status = after_submit(current["status"], unchanged)
    if unchanged and status == current["status"]:
        return
    for role in ROLES:
        await PrecheckParty.update(**_values(cleaned[role])).where(
            (PrecheckParty.precheck == current["id"]) & (PrecheckParty.role == role)
        )
    await Precheck.update(status=status, version=current["version"] + 1, submitted_at=now).where(
        Precheck.id == current["id"]
    )


async def review(
    office_id: int,
    reference: str,
    decision: str,
    note: str,
    *,
    version: int | None,
    actor: audit.Actor,
    ip: str | None,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    """A clerk's decision on a submitted pre-check (``version``: the one they read).
    Audited; both partners get an SMS pointing them to their manage page."""
    try:
        note = clean_note(decision, note)
    except PrecheckInvalid as exc:
        raise _invalid(exc) from exc
    async with write_transaction():
        loaded = await load(_reference(reference))
        if loaded is None or loaded.office.id != office_id:
            raise DomainError("not-found")
        if loaded.appointment.status not in OPEN_STATUSES:
            raise DomainError("precheck-closed", reason="status")
        where = (Precheck.appointment == loaded.id) & (Precheck.status == "submitted")
        if version is not None:
            where &= Precheck.version == version
        rows = (
            await Precheck.update(
                {
                    Precheck.status: decision,
                    Precheck.note: note,
                    Precheck.reviewer_id: actor.id,
                    Precheck.reviewer_name: actor.username[:64],
                    Precheck.reviewed_at: now,
                    Precheck.reviews: Precheck.reviews + 1,
                }
            )
            .where(where)
            .returning(Precheck.reviews, Precheck.version)
        )
        if not rows:
            current = await _row(loaded.id)
            if current is None or current["status"] != "submitted":
                raise DomainError("precheck-not-submitted")
            raise DomainError("precheck-changed")
        await audit.record(
            actor,
            f"precheck.{decision}",
            office_id=office_id,
            object_type="appointment",
            object_id=loaded.appointment.reference,
            before={"status": "submitted", "version": rows[0]["version"]},
            after={"status": decision, "note": note},
            ip=ip,
            now=now,
        )
        # One message per review and party: a later review (after a change) texts again.
        await notify_couple(
            loaded, SMS_TEMPLATES[decision], now, settings, suffix=f":{rows[0]['reviews']}"
        )
    return await _view(loaded, now)


async def staff_view(office_id: int, reference: str, *, now: datetime) -> dict[str, Any]:
    """The whole pre-check for the reviewing clerk (ID numbers and phones stay masked)."""
    loaded = await load(_reference(reference))
    if loaded is None or loaded.office.id != office_id:
        raise DomainError("not-found")
    return await _view(loaded, now)


async def office_list(office: OfficeRecord, day: date, status: str | None) -> list[dict[str, Any]]:
    """Pre-checks of one office and day (masked parties, no pre-entry data).
    ``not_submitted`` lists the active appointments that could have one but have not."""
    if status is not None and status not in STATUSES:
        raise DomainError("invalid-input", field="status", reason="status")
    tz = office.tz
    where = (Appointment.office == office.id) & (Appointment.slot.day == day)
    if status == "not_submitted":
        where &= Appointment.status.is_in(list(OPEN_STATUSES))
        offering = (await registry_rules.for_day(day)).fields
        where &= Appointment.service.is_in([s for s in offering if offering[s]] or ["-"])
    appointments = (
        await Appointment.select(
            Appointment.id,
            Appointment.reference,
            Appointment.service,
            Appointment.status,
            Appointment.slot.start_at,
        )
        .where(where)
        .order_by(Appointment.slot.start_at)
    )
    ids = [a["id"] for a in appointments] or [-1]
    prechecks = {
        p["appointment"]: p for p in await Precheck.select().where(Precheck.appointment.is_in(ids))
    }
    parties: dict[int, list[dict[str, Any]]] = {}
    for p in await Party.select().where(Party.appointment.is_in(ids)).order_by(Party.role):
        parties.setdefault(p["appointment"], []).append(masked_party(party_of(p)))
    listed = []
    for a in appointments:
        row = prechecks.get(a["id"])
        current = row["status"] if row else "not_submitted"
        if (status is None and row is None) or (status is not None and current != status):
            continue
        listed.append(
            {
                "reference": a["reference"],
                "service": a["service"],
                "appointment_status": a["status"],
                "start": a["slot.start_at"].astimezone(tz).strftime("%H:%M"),
                "status": current,
                "version": row["version"] if row else 0,
                "submitted_at": _iso(row["submitted_at"], tz) if row else None,
                "reviewed_at": _iso(row["reviewed_at"], tz) if row else None,
                "reviewer": row["reviewer_name"] if row else "",
                "parties": parties.get(a["id"], []),
            }
        )
    return listed


async def statuses_of(appointment_ids: list[int]) -> dict[int, str]:
    """Pre-check status per appointment (absent: none submitted), for the day view."""
    rows = await Precheck.select(Precheck.appointment, Precheck.status).where(
        Precheck.appointment.is_in(appointment_ids or [-1])
    )
    return {r["appointment"]: r["status"] for r in rows}


async def summary(reference: str) -> dict[str, str] | None:
    """Status and note for the manage page (the caller has checked the token);
    None for services without a pre-check."""
    loaded = await load(_reference(reference))
    if loaded is None or not offered(await rules_of(loaded), loaded.appointment.service):
        return None
    row = await _row(loaded.id)
    if row is None:
        return {"status": "not_submitted", "note": ""}
    return {"status": row["status"], "note": row["note"]}
