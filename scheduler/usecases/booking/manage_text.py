"""The manage code in the confirmation text (issue 14, item 9).

The manage code is shown once on the page; a couple who loses it could not manage
the booking. So the confirmation SMS carries it: a link where the destination's
rules allow links and the text still fits, else the code itself (mainland China:
no links), else nothing. The code exists in plain only at the hold; it is kept
sealed (AES-GCM, scheduler/kernel/crypto.py) until that text is queued, then deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scheduler.db import statements
from scheduler.db.appointments import Loaded
from scheduler.db.couple_tables import ManageText
from scheduler.db.records import PartyRecord
from scheduler.db.statements import Statement
from scheduler.domain.sms import violations
from scheduler.kernel.crypto import SealError, open_sealed, seal
from scheduler.notify.terms import SmsTerms
from scheduler.notify.texts import render_for
from scheduler.settings import Settings
from scheduler.usecases.couples.texting import notify_couple
from scheduler.usecases.policy import policies

PURPOSE = "manage-token"


def keep(settings: Settings, appointment_id: int, token: str) -> Statement:
    """The hold's insert of its code, sealed, for the confirmation text (run with
    the hold's other rows)."""
    sealed = seal(settings, PURPOSE, token)
    return statements.insert(
        "manage_text", ("appointment", "token_sealed"), [(appointment_id, sealed)]
    )


def manage_fields(
    template: str,
    locale: str,
    payload: dict[str, Any],
    phone: str,
    token: str,
    link: str,
    terms: SmsTerms,
) -> dict[str, str]:
    """What one recipient's text carries: the link if their country's rules take
    links and the text still fits, else the code if it fits, else nothing."""
    rule = terms.rule_for(phone)
    choices = ({"manage_link": link}, {"manage_code": token})
    for extra in choices if rule.allow_urls else choices[1:]:
        if not violations(render_for(template, locale, payload | extra, rule), rule):
            return extra
    return {}


async def notify_confirmed(loaded: Loaded, now: datetime, settings: Settings) -> None:
    """Queue the confirmation text to both partners, with the manage code where
    it can travel; the sealed copy is deleted in the same transaction."""
    rows = (
        await ManageText.delete()
        .where(ManageText.appointment == loaded.id)
        .returning(ManageText.token_sealed)
    )
    token = ""
    if rows:
        try:
            token = open_sealed(settings, PURPOSE, rows[0]["token_sealed"])
        except SealError:
            token = ""  # a key removed from DATA_KEYS: the text goes without the code
    reference = loaded.appointment.reference
    link = f"{settings.public_base_url}/manage/{reference}?token={token}"
    terms = await policies.sms_terms(settings)

    def per_party(party: PartyRecord, payload: dict[str, Any]) -> dict[str, str]:
        if not token:
            return {}
        locale = loaded.appointment.locale
        return manage_fields("confirmed", locale, payload, party.phone, token, link, terms)

    await notify_couple(loaded, "confirmed", now, settings, urgent=True, per_party=per_party)
