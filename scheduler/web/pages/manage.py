"""Manage my booking: find it by reference and manage token, see its status,
cancel it (after a confirmation step) or move it with the month and slot picker.

The token arrives once (typed into the lookup form, or in the confirmation page's
link), is then kept in an HttpOnly cookie for the GET pages, and every POST carries
it in a form field: it never appears in an address the server generates for a POST.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.domain.precheck import submission_open
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.settings import Settings
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.calendar import closures
from scheduler.usecases.desk import precheck
from scheduler.web.locale import request_locale
from scheduler.web.pages import picker
from scheduler.web.pages.common import (
    FORM_ERROR,
    SMS_LIMIT,
    error_messages,
    qr_svg,
    render,
    text,
    token_cookie,
    token_of,
)

NOTICES = ("cancelled", "moved")


class ManagePages(Controller):
    path = "/manage"
    include_in_schema = False

    @get("/")
    async def lookup(
        self, request: Request[Any, Any, Any], reference: FromQuery[str] = ""
    ) -> Template:
        return render(request, "lookup.html", reference=reference, errors={})

    @post("/")
    async def find(
        self, request: Request[Any, Any, Any], state: State, data: URLEncodedBody[dict[str, Any]]
    ) -> Response[Any]:
        reference, token = text(data, "reference"), text(data, "token")
        try:
            appt = await booking.view(reference, token)
        except DomainError as exc:
            return lookup_page(request, reference, exc)
        return to_manage(appt, token, state.settings)

    @get("/{reference:str}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        state: State,
        reference: FromPath[str],
        token: FromQuery[str | None] = None,
        notice: FromQuery[str | None] = None,
    ) -> Response[Any]:
        try:
            appt = await booking.view(reference, token_of(request, reference, token))
        except DomainError as exc:
            return lookup_page(request, reference, exc)
        if token:
            # Opened from the confirmation page's link: keep the token in the cookie
            # and take it out of the address bar (and of the history) from here on.
            return to_manage(appt, token, state.settings)
        appt = await closures.annotate(appt)
        appt["precheck"] = await precheck.summary(appt["reference"])
        # No pre-check button once the day's pre-check has closed (the page would say so).
        tz = ZoneInfo(appt["office"]["timezone"])
        appt["precheck_open"] = submission_open(
            date.fromisoformat(appt["slot"]["date"]), utcnow(), tz
        )
        return manage_page(request, appt, token_of(request, reference), notice=notice)

    @get("/{reference:str}/cancel")
    async def ask_cancel(
        self, request: Request[Any, Any, Any], reference: FromPath[str]
    ) -> Template:
        token = token_of(request, reference)
        appt = await booking.view(reference, token)
        return render(request, "cancel.html", appt=appt, token=token)

    @post("/{reference:str}/cancel")
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        state: State,
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        token = token_of(request, reference, text(data, "token"))
        try:
            appt = await booking.cancel(reference, token, now=utcnow(), settings=state.settings)
        except DomainError as exc:
            appt = await booking.view(reference, token)
            errors = error_messages(exc, request_locale(request))
            return manage_page(request, appt, token, status=exc.status, errors=errors)
        return to_manage(appt, token, state.settings, notice="cancelled")

    @get("/{reference:str}/move")
    async def pick_move(
        self,
        request: Request[Any, Any, Any],
        reference: FromPath[str],
        month: FromQuery[str | None] = None,
        day: FromQuery[str | None] = None,
    ) -> Template:
        return await move_page(request, reference, token_of(request, reference), month, day)

    @post("/{reference:str}/move", middleware=[SMS_LIMIT])
    async def move(
        self,
        request: Request[Any, Any, Any],
        state: State,
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        """Move to the chosen slot; a refused move shows the same month and day again."""
        token = token_of(request, reference, text(data, "token"))
        try:
            slot_id = int(text(data, "slot_id"))
        except ValueError:
            slot_id = 0  # no such slot: the use case refuses it like any unknown one
        if text(data, "confirm") != "yes":
            # Like cancelling: a second, explicit step names both times first.
            return await confirm_move_page(request, reference, token, data, slot_id)
        try:
            appt = await booking.move(
                reference, token, slot_id, now=utcnow(), settings=state.settings
            )
        except DomainError as exc:
            errors = error_messages(exc, request_locale(request))
            month, day = text(data, "month") or None, text(data, "day") or None
            return await move_page(
                request, reference, token, month, day, status=exc.status, errors=errors
            )
        return to_manage(appt, token, state.settings, notice="moved")


def to_manage(
    appt: dict[str, Any], token: str | None, settings: Settings, notice: str = ""
) -> Redirect:
    reference = appt["reference"]
    return Redirect(
        f"/manage/{reference}",
        status_code=303,
        query_params={"notice": notice} if notice else None,
        cookies=[token_cookie(reference, token, settings)] if token else None,
    )


async def confirm_move_page(
    request: Request[Any, Any, Any],
    reference: str,
    token: str | None,
    data: dict[str, Any],
    slot_id: int,
) -> Template:
    appt = await booking.view(reference, token)
    month, day = text(data, "month") or None, text(data, "day") or None
    try:
        chosen = await picker.find_slot(
            appt["office"]["code"],
            appt["service"],
            date.fromisoformat(day or ""),
            slot_id,
            utcnow(),
        )
    except (DomainError, ValueError):
        errors = {
            FORM_ERROR: translate(request_locale(request), "error.invalid-input.unknown-slot")
        }
        return await move_page(request, reference, token, month, day, status=422, errors=errors)
    return render(
        request,
        "move_confirm.html",
        here=f"/manage/{appt['reference']}/move?month={month or ''}",
        appt=appt,
        token=token,
        chosen=chosen,
        month=month or "",
        day=day or "",
    )


def lookup_page(request: Request[Any, Any, Any], reference: str, exc: DomainError) -> Template:
    # Unknown reference and wrong token read the same, as in the API; the page says
    # what it asked for (reference and manage code) and how to recover a lost code.
    errors = error_messages(exc, request_locale(request))
    if exc.slug == "not-found":
        errors = {FORM_ERROR: translate(request_locale(request), "couples.lookup.not_found")}
    return render(
        request,
        "lookup.html",
        status=exc.status,
        here="/manage",
        reference=reference,
        errors=errors,
    )


def manage_page(
    request: Request[Any, Any, Any],
    appt: dict[str, Any],
    token: str | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> Template:
    return render(
        request,
        "manage.html",
        status=status,
        here=f"/manage/{appt['reference']}",
        appt=appt,
        token=token,
        qr=qr_svg(request_locale(request), appt["reference"]),
        errors=errors or {},
        notice=notice if notice in NOTICES else None,
    )


async def move_page(
    request: Request[Any, Any, Any],
    reference: str,
    token: str | None,
    month: str | None,
    day: str | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Template:
    appt = await booking.view(reference, token)
    cal = await picker.month_view(appt["office"]["code"], appt["service"], month, day, utcnow())
    base = f"/manage/{appt['reference']}/move"
    return picker.picker_page(
        request,
        "move.html",
        cal,
        status=status,
        # After a refused move the language switcher reloads the month it showed.
        here=None if request.method == "GET" else f"{base}?month={cal['month']}",
        base=base,
        mode="move",
        appt=appt,
        token=token,
        errors=errors or {},
    )
