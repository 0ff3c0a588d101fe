"""Texting both partners of an appointment about it (one outbox row each), with
what to bring under the rule set in force and the SMS terms of the policy store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from scheduler.db.appointments import Loaded, public_view
from scheduler.db.records import PartyRecord
from scheduler.domain.rules import party_kind
from scheduler.notify import outbox
from scheduler.notify.texts import sms_office_name
from scheduler.settings import Settings
from scheduler.usecases.policy import policies, rules


async def notify_couple(
    loaded: Loaded,
    template: str,
    now: datetime,
    settings: Settings,
    *,
    suffix: str = "",
    urgent: bool = False,
    extra: dict[str, Any] | None = None,
    per_party: Callable[[PartyRecord, dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Queue ``template`` to both parties; the key makes the event idempotent.
    ``per_party(party, payload)`` adds what differs per recipient (their country's
    rules decide whether a link may travel)."""
    view = public_view(loaded)
    payload = {
        "reference": view["reference"],
        "service": view["service"],
        "office": sms_office_name(view["office"], loaded.appointment.locale),
        "date": view["slot"]["date"],
        "start": view["slot"]["start"],
    } | (extra or {})
    # What to bring comes from the rule set in force on the appointment's day, for
    # each partner's own kind of document (a Hong Kong resident's list is not a
    # mainland resident's); the mask keeps what party_kind reads.
    rule_set = await rules.for_day(loaded.slot.day)
    terms = await policies.sms_terms(settings)
    for party in loaded.parties:
        kind = party_kind(party.id_type, party.id_masked)
        mine = payload | {
            "bring": rule_set.sms_bring(view["service"], kind, loaded.appointment.locale)
        }
        await outbox.enqueue(
            key=f"appointment:{loaded.id}:{template}{suffix}:{party.role}",
            to_phone=party.phone,
            template=template,
            locale=loaded.appointment.locale,
            payload=mine | (per_party(party, mine) if per_party else {}),
            now=now,
            terms=terms,
            urgent=urgent,
            appointment_id=loaded.id,
            tz=loaded.office.timezone,
        )
