"""Public JSON API for couples and the mini-program (paths fixed by API.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from scheduler.kernel.clock import utcnow
from scheduler.kernel.ics import appointment_ics
from scheduler.observability.metrics import booking_outcome
from scheduler.usecases.booking import idempotency
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.calendar import slots
from scheduler.web.api.schemas import (
    AppointmentOut,
    AvailabilityOut,
    BookingIn,
    ConfirmIn,
    HoldOut,
    MoveIn,
    OfficeListItem,
)
from scheduler.web.calendar_cache import CalendarCache, cached_json
from scheduler.web.locale import request_locale
from scheduler.web.problems import PROBLEM_JSON, Problem

ManageToken = Annotated[str | None, HeaderParameter(name="X-Manage-Token", required=False)]


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Documented error responses, all problem+json. 400 is always listed: otherwise
    Litestar documents its own JSON error body for it, which this app never sends."""
    return {
        s: ResponseSpec(
            data_container=Problem, media_type=PROBLEM_JSON, description="Problem details"
        )
        for s in sorted({400, *statuses})
    }


def booking_input(data: JSONBody[BookingIn]) -> booking.BookingInput:
    def party(p: Any) -> booking.PartyInput:
        return booking.PartyInput(
            name=p.name, id_type=p.id_type, id_number=p.id_number, phone=p.phone
        )

    return booking.BookingInput(
        slot_id=data.slot_id,
        service=data.service,
        party_a=party(data.party_a),
        party_b=party(data.party_b),
        locale=data.locale,
    )


class PublicApi(Controller):
    path = "/api/v1"
    tags = ("public",)

    @get("/offices", summary="Offices with their services")
    async def offices(self) -> list[OfficeListItem]:
        return msgspec.convert(await slots.list_offices(), list[OfficeListItem])

    @get(
        "/offices/{office:str}/availability",
        summary="Days and slots of one office and service",
        description="Public and cacheable: `ETag`, `Last-Modified` and `Cache-Control: public,"
        " max-age`; a conditional request for an unchanged calendar is answered 304.",
        responses=problems(404, 422),
    )
    async def availability(
        self,
        request: Request[Any, Any, Any],
        state: State,
        office: FromPath[str],
        service: FromQuery[str],
        from_: Annotated[date | None, QueryParameter(name="from", required=False)] = None,
        to: FromQuery[date | None] = None,
    ) -> Response[AvailabilityOut]:
        calendar: CalendarCache = state.calendar
        entry = await calendar.availability(
            office, service, from_, to, utcnow(), locale=request_locale(request)
        )
        return cached_json(request.headers, entry, calendar.max_age)

    @post(
        "/appointments/{reference:str}/confirm",
        summary="One party confirms with the code sent to their phone",
        status_code=200,
        responses=problems(404, 409, 422, 429),
    )
    async def confirm(
        self, state: State, reference: FromPath[str], data: JSONBody[ConfirmIn]
    ) -> AppointmentOut:
        body = await booking.confirm(
            reference, data.party, data.code, now=utcnow(), settings=state.settings
        )
        return msgspec.convert(body, AppointmentOut)

    @get(
        "/appointments/{reference:str}",
        summary="View a booking (X-Manage-Token); `{reference}.ics?token=` gives the calendar",
        responses=problems(404),
    )
    async def view(
        self,
        reference: FromPath[str],
        x_manage_token: ManageToken = None,
        token: FromQuery[str | None] = None,
    ) -> Response[Any]:
        if reference.lower().endswith(".ics"):
            body = await booking.view(reference[:-4], token)
            return Response(
                appointment_ics(body),
                media_type="text/calendar",  # Litestar adds "; charset=utf-8" to text/*
                headers={"Content-Disposition": f'attachment; filename="{body["reference"]}.ics"'},
            )
        return Response(
            msgspec.convert(await booking.view(reference, x_manage_token), AppointmentOut)
        )

    @post(
        "/appointments/{reference:str}/cancel",
        summary="Cancel a booking (X-Manage-Token)",
        status_code=200,
        responses=problems(404, 409),
    )
    async def cancel(
        self, state: State, reference: FromPath[str], x_manage_token: ManageToken = None
    ) -> AppointmentOut:
        body = await booking.cancel(
            reference, x_manage_token, now=utcnow(), settings=state.settings
        )
        return msgspec.convert(body, AppointmentOut)


class SmsSendingApi(Controller):
    """Endpoints that text the couple: mounted behind the per-client SMS rate limit."""

    path = "/api/v1"
    tags = ("public",)

    @post(
        "/appointments",
        summary="Hold a slot for a couple; each party then confirms with an SMS code",
        status_code=201,
        responses=problems(409, 422, 429),
    )
    async def create(
        self,
        state: State,
        data: JSONBody[BookingIn],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", required=False)
        ] = None,
    ) -> Response[HoldOut]:
        idem = idempotency.make_key("book", idempotency_key, msgspec.to_builtins(data))
        with booking_outcome():
            status, body = await booking.book(
                booking_input(data), now=utcnow(), settings=state.settings, idem=idem
            )
        return Response(msgspec.convert(body, HoldOut), status_code=status)

    @post(
        "/appointments/{reference:str}/move",
        summary="Move a booking to another slot of the same office and service (X-Manage-Token)",
        status_code=200,
        responses=problems(404, 409, 422, 429),  # behind the SMS rate limit, like booking
    )
    async def move(
        self,
        state: State,
        reference: FromPath[str],
        data: JSONBody[MoveIn],
        x_manage_token: ManageToken = None,
    ) -> AppointmentOut:
        body = await booking.move(
            reference, x_manage_token, data.slot_id, now=utcnow(), settings=state.settings
        )
        return msgspec.convert(body, AppointmentOut)
