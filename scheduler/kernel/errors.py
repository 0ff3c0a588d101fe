"""The one error type use cases raise. It carries the stable ``type`` slug of
API.md, the HTTP status and a translation key; the web layer renders it as
RFC 9457 problem+json or as a message on a page."""

from __future__ import annotations

from typing import Any

# slug -> HTTP status. The slug is also the translation key "error.<slug>".
STATUSES: dict[str, int] = {
    "invalid-input": 422,
    "wrong-code": 422,
    "idempotency-key-reused": 422,
    "unauthorized": 401,
    "invalid-credentials": 401,
    "forbidden": 403,
    "not-found": 404,
    "slot-full": 409,
    "day-full": 409,
    "onsite-full": 409,
    "already-booked": 409,
    "already-waiting": 409,
    "date-closed": 409,
    "booking-not-open": 409,
    "service-suspended": 409,
    "banned": 409,
    "hold-expired": 409,
    "too-late": 409,
    "not-pending": 409,
    "not-today": 409,
    "both-parties-required": 409,
    "too-early": 409,
    "late-decision-needed": 409,
    "hall-full": 409,
    "queue-empty": 409,
    "bad-transition": 409,
    "blackout-exists": 409,
    "preview-required": 428,
    "already-checked-in": 409,
    "preview-mismatch": 409,
    "preview-expired": 409,
    "lottery-date": 409,
    "lottery-exists": 409,
    "lottery-closed": 409,
    "already-applied": 409,
    "cap-below-bookings": 409,
    "precheck-not-offered": 409,
    "precheck-closed": 409,
    "precheck-not-submitted": 409,
    "precheck-changed": 409,
    "office-not-designated": 409,
    "rule-set-exists": 409,
    "holiday-preview-stale": 409,
    "too-many-attempts": 429,
    "rate-limited": 429,
    "account-locked": 429,
    "service-unavailable": 503,
}


class DomainError(Exception):
    def __init__(self, slug: str, *, field: str | None = None, **params: Any) -> None:
        if slug not in STATUSES:
            raise ValueError(f"unknown error slug {slug!r}")
        super().__init__(slug)
        self.slug = slug
        self.status = STATUSES[slug]
        self.field = field
        self.params = params
        # Every problem of one request (all invalid fields at once); empty for one.
        self.errors: list[DomainError] = []

    @classmethod
    def all_of(cls, errors: list[DomainError]) -> DomainError:
        """One error that carries several: the first is its status and message,
        ``errors`` lists each (a form shows every field's problem at once)."""
        first = errors[0]
        combined = cls(first.slug, field=first.field, **first.params)
        combined.errors = list(errors)
        return combined

    @property
    def key(self) -> str:
        """Translation key of the human message."""
        reason = self.params.get("reason")
        return f"error.{self.slug}.{reason}" if reason else f"error.{self.slug}"
