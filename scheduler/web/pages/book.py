"""Booking pages: office and service, month, slot, the couple's details, the two
SMS codes, and the confirmation."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from scheduler.kernel.clock import utcnow
from scheduler.kernel.crypto import SealError, open_sealed, seal
from scheduler.kernel.errors import DomainError
from scheduler.kernel.i18n import translate
from scheduler.settings import Settings
from scheduler.usecases.booking import access as couple_access
from scheduler.usecases.booking import idempotency
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.calendar import slots
from scheduler.usecases.policy import policies
from scheduler.web.locale import request_locale
from scheduler.web.pages import picker
from scheduler.web.pages.common import (
    FORM_ERROR,
    SMS_LIMIT,
    appointment_page,
    field_errors,
    render,
    text,
    token_cookie,
    token_of,
)

PARTY_FIELDS = ("name", "id_type", "id_number", "phone")
# Input names are the use case's field paths, so DomainError.field names the input.
FORM_FIELDS = tuple(f"party_{role}.{name}" for role in booking.PARTY_ROLES for name in PARTY_FIELDS)
HIDDEN_FIELDS = ("office", "service", "day", "slot_id", "form_id")
# Refusals about one party's code, shown next to it; others (expired hold) head the page.
CODE_ERRORS = ("wrong-code", "too-many-attempts", "rate-limited")
# What was typed into a refused form, sealed in a cookie for 30 minutes, so that
# "choose another time" (another page, another slot) finds it again: never in an
# address, never readable by scripts or by anyone without the server's key.
DRAFT_COOKIE = "book-draft"
DRAFT_PURPOSE = "book-draft"
DRAFT_SECONDS = 30 * 60


class BookingPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Template:
        return render(request, "home.html", offices=await slots.list_offices())

    @get("/book/{office:str}/{service:str}")
    async def month(
        self,
        request: Request[Any, Any, Any],
        state: State,
        office: FromPath[str],
        service: FromPath[str],
        month: FromQuery[str | None] = None,
        day: FromQuery[str | None] = None,
    ) -> Template:
        cal = await picker.month_view(
            office,
            service,
            month,
            day,
            utcnow(),
            calendar_cache=state.calendar,
            locale=request_locale(request),
        )
        base = f"/book/{cal['office']['code']}/{service}"
        return picker.picker_page(
            request, "month.html", cal, pages=state.calendar.pages, base=base, mode="book"
        )

    @get("/book/{office:str}/{service:str}/{day:date}/{slot_id:int}")
    async def form(
        self,
        request: Request[Any, Any, Any],
        office: FromPath[str],
        service: FromPath[str],
        day: FromPath[date],
        slot_id: FromPath[int],
        state: State,
    ) -> Template:
        slot = await picker.find_slot(office, service, day, slot_id, utcnow())
        return booking_form(request, slot, read_draft(request, state.settings))

    @post("/book", middleware=[SMS_LIMIT])
    async def submit(
        self, request: Request[Any, Any, Any], state: State, data: URLEncodedBody[dict[str, Any]]
    ) -> Response[Any]:
        """Hold the slot (the API's use case) and go on to the codes; on a refusal the
        form comes back with what was typed and the reason next to its field."""
        values = {key: text(data, key) for key in (*FORM_FIELDS, *HIDDEN_FIELDS)}
        locale = request_locale(request)
        try:
            data_in = booking_input(values, locale)
            _, body = await booking.book(
                data_in, now=utcnow(), settings=state.settings, idem=form_key(values, data_in)
            )
        except DomainError as exc:
            slot = await picker.find_slot(
                values["office"], values["service"], _day(values["day"]), _slot_id(values), utcnow()
            )
            errors = field_errors(exc, locale, FORM_FIELDS)
            # A full slot (or one whose places to wait for a seat are taken, issue 16):
            # the day's waiting list is the way on for couples who prove their phones.
            page = booking_form(
                request,
                slot,
                values,
                status=exc.status,
                errors=errors,
                waitlist=exc.slug == "slot-full",
            )
            keep_draft(page, values, state.settings)
            return page
        reference = body["reference"]
        done = Redirect(
            f"/booking/{reference}",
            status_code=303,
            cookies=[token_cookie(reference, body["manage_token"], state.settings)],
        )
        done.delete_cookie(DRAFT_COOKIE, path="/book")
        return done

    @get("/booking/{reference:str}")
    async def progress(
        self, request: Request[Any, Any, Any], state: State, reference: FromPath[str]
    ) -> Template:
        token = token_of(request, reference)
        appt = await booking.view(reference, token)
        context = await code_context(appt, state.settings)
        return appointment_page(request, appt, token, **context)

    @post("/booking/{reference:str}/resend", middleware=[SMS_LIMIT])
    async def resend(
        self,
        request: Request[Any, Any, Any],
        state: State,
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        """Text one partner a new code; the page says so next to that partner."""
        party = text(data, "party")
        token = token_of(request, reference, text(data, "token"))
        notices: dict[str, str] = {}
        errors: dict[str, str] = {}
        locale = request_locale(request)
        status = 200
        try:
            await couple_access.resend(
                reference, token, party, now=utcnow(), settings=state.settings
            )
            notices[party] = translate(locale, "couples.codes.resent")
        except DomainError as exc:
            if exc.slug == "not-found":
                raise
            status = exc.status
            key = party if exc.slug in CODE_ERRORS and party in booking.PARTY_ROLES else FORM_ERROR
            errors[key] = translate(locale, exc.key, **exc.params)
        appt = await booking.view(reference, token)
        context = await code_context(appt, state.settings)
        return appointment_page(
            request,
            appt,
            token,
            status=status,
            errors=errors,
            notices=notices,
            here=f"/booking/{appt['reference']}",
            **context,
        )

    @post("/booking/{reference:str}/confirm")
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        state: State,
        reference: FromPath[str],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Response[Any]:
        party = text(data, "party")
        try:
            appt = await booking.confirm(
                reference, party, text(data, "code"), now=utcnow(), settings=state.settings
            )
        except DomainError as exc:
            # Shown next to that party's code; the failed attempt is already counted.
            token = token_of(request, reference, text(data, "token"))
            appt = await booking.view(reference, token)
            key = party if exc.slug in CODE_ERRORS and party in booking.PARTY_ROLES else FORM_ERROR
            message = translate(request_locale(request), exc.key, **exc.params)
            context = await code_context(appt, state.settings)
            return appointment_page(
                request,
                appt,
                token,
                status=exc.status,
                errors={key: message},
                here=f"/booking/{appt['reference']}",
                **context,
            )
        return Redirect(f"/booking/{appt['reference']}", status_code=303)


def booking_form(
    request: Request[Any, Any, Any],
    slot: dict[str, Any],
    values: dict[str, str],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    waitlist: bool = False,
) -> Template:
    here = f"/book/{slot['office']['code']}/{slot['service']}/{slot['date']}/{slot['id']}"
    return render(
        request,
        "form.html",
        status=status,
        here=here,
        slot=slot,
        values=values,
        errors=errors or {},
        waitlist=waitlist,
        # The types the ID-type policy accepts for this service (its cached copy).
        id_types=policies.cached().id_types().for_service(slot["service"]),
        # A double tap or a reload re-sends the same form: the same booking comes back.
        form_id=secrets.token_urlsafe(16),
    )


async def code_context(appt: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What the code page shows beyond the booking: attempts and resends left per
    partner, and whether the hold ended because the codes locked."""
    reference = appt["reference"]
    if appt["status"] == "pending_confirmation":
        return {"code_status": await couple_access.code_status(reference, settings)}
    if appt["status"] == "expired":
        return {"locked": await couple_access.locked(reference)}
    return {}


def keep_draft(page: Response[Any], values: dict[str, str], settings: Settings) -> None:
    typed = {key: values[key] for key in FORM_FIELDS if values.get(key)}
    page.set_cookie(
        DRAFT_COOKIE,
        seal(settings, DRAFT_PURPOSE, json.dumps(typed)),
        path="/book",
        max_age=DRAFT_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings.public_base_url.startswith("https://"),
    )


def read_draft(request: Request[Any, Any, Any], settings: Settings) -> dict[str, str]:
    """The values of the last refused form, if any (a bad or old cookie: none)."""
    raw = request.cookies.get(DRAFT_COOKIE)
    if not raw:
        return {}
    try:
        typed = json.loads(open_sealed(settings, DRAFT_PURPOSE, raw))
    except (SealError, ValueError):
        return {}
    if not isinstance(typed, dict):
        return {}
    return {k: str(v) for k, v in typed.items() if k in FORM_FIELDS}


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("invalid-input", field="day") from None


def _slot_id(values: dict[str, str]) -> int:
    try:
        return int(values["slot_id"])
    except ValueError:
        raise DomainError("invalid-input", field="slot_id", reason="unknown-slot") from None


def booking_input(values: dict[str, str], locale: str) -> booking.BookingInput:
    def party(role: str) -> booking.PartyInput:
        return booking.PartyInput(**{name: values[f"party_{role}.{name}"] for name in PARTY_FIELDS})

    return booking.BookingInput(
        slot_id=_slot_id(values),
        service=values["service"],
        party_a=party("a"),
        party_b=party("b"),
        locale=locale,
    )


def form_key(values: dict[str, str], data: booking.BookingInput) -> idempotency.Key | None:
    """An idempotency key per rendered form *and* content: the same submission twice
    gives the same booking, a corrected one is a new attempt rather than a refusal."""
    if not values["form_id"]:
        return None
    payload = {key: values[key] for key in FORM_FIELDS} | {
        "slot_id": data.slot_id,
        "service": data.service,
        "locale": data.locale,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return idempotency.make_key("page-book", f"{values['form_id'][:64]}.{digest}", payload)
