"""Waiting-list pages for couples, linked from a full day of the booking calendar:
join (both partners), verify both phones, see the place in the queue and any offer,
leave. Each handler calls one use case of scheduler/usecases/waitlist/entries.py."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.calendar import slots
from scheduler.usecases.policy import policies
from scheduler.usecases.waitlist import entries as waitlist
from scheduler.web.locale import request_locale
from scheduler.web.pages.common import (
    FORM_ERROR,
    SMS_LIMIT,
    error_messages,
    render,
    text,
    token_cookie,
    token_of,
)
from scheduler.web.pages.couple_forms import PARTY_FORM_FIELDS, code_errors, party_input

FORM_FIELDS = (
    *PARTY_FORM_FIELDS,
    "time_from",
    "time_to",
    "office_2",
    "office_3",
)
# Use-case fields shown next to another input of the form.
_FIELD_OF = {"offices": "office_2", "date": FORM_ERROR}


def _join_input(
    office: str, service: str, day: date, values: dict[str, str], locale: str
) -> waitlist.JoinInput:
    extra = tuple(values[k] for k in ("office_2", "office_3") if values[k])
    return waitlist.JoinInput(
        service=service,
        day=day,
        offices=(office, *extra),
        party_a=party_input(values, "a"),
        party_b=party_input(values, "b"),
        time_from=values["time_from"] or None,
        time_to=values["time_to"] or None,
        locale=locale,
    )


async def _form(
    request: Request[Any, Any, Any],
    office: str,
    service: str,
    day: date,
    values: dict[str, str],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Template:
    offices = [
        o
        for o in await slots.list_offices()
        if any(s["service"] == service and not s["suspended"] for s in o["services"])
    ]
    here = next((o for o in offices if o["code"] == office), None)
    if here is None:
        raise DomainError("not-found")
    return render(
        request,
        "waitlist_form.html",
        status=status,
        here=f"/waitlist/{office}/{service}/{day.isoformat()}",
        office=here,
        others=[o for o in offices if o["code"] != office],
        service=service,
        day=day.isoformat(),
        values=values,
        errors=errors or {},
        id_types=policies.cached().id_types().for_service(service),
    )


def _entry_page(
    request: Request[Any, Any, Any],
    entry: dict[str, Any],
    token: str | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Template:
    return render(
        request,
        "waitlist_entry.html",
        status=status,
        here=f"/waitlist/entry/{entry['reference']}",
        entry=entry,
        token=token,
        errors=errors or {},
    )


class WaitlistPages(Controller):
    path = "/waitlist"
    include_in_schema = False

    @get("/{office:str}/{service:str}/{day:date}")
    async def form(
        self,
        request: Request[Any, Any, Any],
        office: FromPath[str],
        service: FromPath[str],
        day: FromPath[date],
    ) -> Template:
        return await _form(request, office, service, day, {})

    @post("/{office:str}/{service:str}/{day:date}", middleware=[SMS_LIMIT])
    async def join(
        self,
        request: Request[Any, Any, Any],
        state: State,
        office: FromPath[str],
        service: FromPath[str],
        day: FromPath[date],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        values = {key: text(data, key) for key in FORM_FIELDS}
        locale = request_locale(request)
        try:
            entry = await waitlist.join(
                _join_input(office, service, day, values, locale),
                now=utcnow(),
                settings=state.settings,
            )
        except DomainError as exc:
            if exc.field in _FIELD_OF:
                exc.field = _FIELD_OF[exc.field]
            errors = error_messages(exc, locale, FORM_FIELDS)
            return await _form(
                request, office, service, day, values, status=exc.status, errors=errors
            )
        reference = entry["reference"]
        return Redirect(
            f"/waitlist/entry/{reference}",
            status_code=303,
            cookies=[token_cookie(reference, entry["manage_token"], state.settings)],
        )

    @get("/entry/{reference:str}")
    async def entry(self, request: Request[Any, Any, Any], reference: FromPath[str]) -> Template:
        token = token_of(request, reference)
        entry = await waitlist.view(reference, token, now=utcnow())
        page = _entry_page(request, entry, token)
        if entry["offer"] and token:
            # The offer's appointment shares this token: its booking pages find it.
            page.set_cookie(
                token_cookie(entry["offer"]["reference"], token, request.app.state.settings)
            )
        return page

    @post("/entry/{reference:str}/confirm")
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        state: State,
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        party = text(data, "party")
        token = token_of(request, reference, text(data, "token"))
        try:
            await waitlist.confirm(
                reference, party, text(data, "code"), now=utcnow(), settings=state.settings
            )
        except DomainError as exc:
            entry = await waitlist.view(reference, token, now=utcnow())
            errors = code_errors(exc, party, request_locale(request))
            return _entry_page(request, entry, token, status=exc.status, errors=errors)
        return Redirect(f"/waitlist/entry/{reference}", status_code=303)

    @post("/entry/{reference:str}/leave")
    async def leave(
        self,
        request: Request[Any, Any, Any],
        state: State,
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        token = token_of(request, reference, text(data, "token"))
        await waitlist.leave(reference, token, now=utcnow(), settings=state.settings)
        return Redirect(f"/waitlist/entry/{reference}", status_code=303)
