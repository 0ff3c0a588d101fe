"""The couple's document pre-check page, reached from the manage page: their
status, the clerk's note, and the form for both partners' data and checklist.

The manage token comes from the cookie set by the manage page (GET) or the form's
hidden field (POST), never from an address, as on the other manage pages.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.domain.precheck import EDUCATION, MARITAL_STATUSES, ROLES, PartyData, countries
from scheduler.domain.rules import FIELDS, SEXES
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.desk import precheck
from scheduler.web.locale import request_locale
from scheduler.web.pages.common import field_errors, render, text, token_of

FIELD_NAMES = FIELDS
ERROR_FIELDS = tuple(f"party_{r}.{f}" for r in ROLES for f in (*FIELD_NAMES, "documents"))
DOC_PREFIX = "doc."


def _party(form: dict[str, Any], role: str) -> PartyData:
    prefix = f"party_{role}."
    ticked = {
        key.removeprefix(prefix + DOC_PREFIX)
        for key in form
        if key.startswith(prefix + DOC_PREFIX) and text(form, key) == "on"
    }
    return PartyData(
        nationality=text(form, prefix + "nationality"),
        occupation=text(form, prefix + "occupation"),
        education=text(form, prefix + "education"),
        marital_status=text(form, prefix + "marital_status"),
        sex=text(form, prefix + "sex"),
        # Only the rule set's documents are accepted (clean_party refuses others).
        documents=frozenset(ticked),
    )


def _submission(form: dict[str, Any]) -> precheck.Submission:
    return precheck.Submission(
        party_a=_party(form, "a"),
        party_b=_party(form, "b"),
        birth_a=text(form, "party_a.birth_date"),
        birth_b=text(form, "party_b.birth_date"),
    )


def _values(pre: dict[str, Any]) -> dict[str, Any]:
    """The form's values from the stored pre-check (a fresh form proposes CN)."""
    values: dict[str, Any] = {}
    for party in pre["parties"]:
        prefix = f"party_{party['role']}."
        for name in FIELD_NAMES:
            values[prefix + name] = party.get(name, "")
        values[prefix + "nationality"] = party["nationality"] or "CN"
        for doc in party["documents"]:
            values[f"{prefix}doc.{doc}"] = True
    return values


def _typed(form: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for role in ROLES:
        data, prefix = _party(form, role), f"party_{role}."
        for name in FIELD_NAMES:
            values[prefix + name] = getattr(data, name) or ""
        values[prefix + "birth_date"] = text(form, prefix + "birth_date")
        for doc in data.documents:
            values[f"{prefix}doc.{doc}"] = True
    return values


def _page(
    request: Request[Any, Any, Any],
    pre: dict[str, Any],
    token: str | None,
    *,
    values: dict[str, Any] | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> Template:
    return render(
        request,
        "precheck.html",
        status=status,
        here=f"/manage/{pre['reference']}/precheck",
        pre=pre,
        token=token,
        values=values if values is not None else _values(pre),
        errors=errors or {},
        notice=notice,
        education=EDUCATION,
        marital_statuses=MARITAL_STATUSES,
        sexes=SEXES,
        countries=countries(),
    )


class PrecheckPages(Controller):
    path = "/manage/{reference:str}/precheck"
    include_in_schema = False

    @get("/")
    async def show(
        self,
        request: Request[Any, Any, Any],
        reference: FromPath[str],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        token = token_of(request, reference)
        pre = await precheck.view(reference, token, now=utcnow())
        return _page(request, pre, token, notice="saved" if notice == "saved" else None)

    @post("/")
    async def submit(
        self,
        request: Request[Any, Any, Any],
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        token = token_of(request, reference, text(data, "token"))
        submission = _submission(data)
        try:
            pre = await precheck.submit(reference, token, submission, now=utcnow())
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            pre = await precheck.view(reference, token, now=utcnow())
            errors = field_errors(exc, request_locale(request), ERROR_FIELDS)
            return _page(request, pre, token, values=_typed(data), status=exc.status, errors=errors)
        return Redirect(
            f"/manage/{pre['reference']}/precheck",
            status_code=303,
            query_params={"notice": "saved"},
        )
