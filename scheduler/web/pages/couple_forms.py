"""Form pieces shared by the couple pages that name both partners and verify both
phones with codes (the lottery application, the waiting list): the party fields,
reading a party from the submitted values, and where a code's error is shown."""

from __future__ import annotations

from scheduler.kernel.errors import DomainError
from scheduler.usecases.couples.partners import PARTY_ROLES, PartyInput
from scheduler.web.pages.common import FORM_ERROR, error_messages

PARTY_FIELDS = ("name", "id_type", "id_number", "phone")
PARTY_FORM_FIELDS = tuple(f"party_{role}.{name}" for role in PARTY_ROLES for name in PARTY_FIELDS)
# Errors of one party's code: shown by that party's code input, not atop the page.
CODE_ERRORS = ("wrong-code", "too-many-attempts")


def party_input(values: dict[str, str], role: str) -> PartyInput:
    return PartyInput(**{name: values[f"party_{role}.{name}"] for name in PARTY_FIELDS})


def code_errors(exc: DomainError, party: str, locale: str) -> dict[str, str]:
    """The message of a failed code entry keyed by the party's code input (or the page)."""
    key = party if exc.slug in CODE_ERRORS and party in PARTY_ROLES else FORM_ERROR
    return {key: error_messages(exc, locale)[FORM_ERROR]}
