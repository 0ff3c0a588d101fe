"""Public JSON API of the waiting list: join, verify phones, view, leave.

An offer is an ordinary held appointment: the couple confirms it with
``POST /api/v1/appointments/{reference}/confirm`` and the codes texted with the offer,
and manages it with the waiting list's manage token.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, HeaderParameter, JSONBody
from msgspec import Meta

from scheduler.kernel.clock import utcnow
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.waitlist import entries as waitlist
from scheduler.web.api.public import problems
from scheduler.web.api.schemas import ConfirmIn, Locale, PartyIn, Service

ManageToken = Annotated[str | None, HeaderParameter(name="X-Manage-Token", required=False)]
OfficeCode = Annotated[str, Meta(min_length=1, max_length=16)]
HourMinute = Annotated[str, Meta(pattern=r"^\d{2}:\d{2}$", description="Local time HH:MM")]


class WaitlistJoinIn(msgspec.Struct, forbid_unknown_fields=True):
    service: Service
    date: dt.date
    offices: Annotated[
        list[OfficeCode],
        Meta(min_length=1, max_length=3, description="Office codes, most wanted first"),
    ]
    party_a: PartyIn
    party_b: PartyIn
    # Both or neither: a slot starting in [time_from, time_to); neither: any time that day.
    time_from: HourMinute | None = None
    time_to: HourMinute | None = None
    locale: Locale = "zh-Hans"


class WaitlistOfficeOut(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str


class WaitlistSlotOut(msgspec.Struct):
    id: int
    date: str
    start: str
    end: str
    start_at: str
    end_at: str


class WaitlistOfferOut(msgspec.Struct):
    reference: str
    status: str
    office: str
    slot: WaitlistSlotOut
    expires_at: str | None


class WaitlistPartyOut(msgspec.Struct):
    role: str
    name: str
    id_type: str
    id_number_masked: str
    phone_masked: str
    confirmed: bool


class WaitlistOut(msgspec.Struct):
    reference: str
    status: str
    service: str
    date: str
    offices: list[WaitlistOfficeOut]
    time_from: str | None
    time_to: str | None
    locale: str
    ahead: int | None
    offer: WaitlistOfferOut | None
    parties: list[WaitlistPartyOut]


class WaitlistJoinedOut(WaitlistOut, kw_only=True):
    manage_token: str


def _party(p: PartyIn) -> booking.PartyInput:
    return booking.PartyInput(name=p.name, id_type=p.id_type, id_number=p.id_number, phone=p.phone)


class WaitlistJoinApi(Controller):
    """Joining texts both partners: mounted behind the per-client rate limit."""

    path = "/api/v1/waitlist"
    tags = ("waitlist",)

    @post(
        "/",
        summary="Join the waiting list of a date (both partners then verify by SMS code)",
        status_code=201,
        responses=problems(409, 422, 429),
    )
    async def join(self, state: State, data: JSONBody[WaitlistJoinIn]) -> WaitlistJoinedOut:
        body = await waitlist.join(
            waitlist.JoinInput(
                service=data.service,
                day=data.date,
                offices=tuple(data.offices),
                party_a=_party(data.party_a),
                party_b=_party(data.party_b),
                time_from=data.time_from,
                time_to=data.time_to,
                locale=data.locale,
            ),
            now=utcnow(),
            settings=state.settings,
        )
        return msgspec.convert(body, WaitlistJoinedOut)


class WaitlistApi(Controller):
    path = "/api/v1/waitlist"
    tags = ("waitlist",)

    @post(
        "/{reference:str}/confirm",
        summary="One partner verifies their phone with the code texted on joining",
        status_code=200,
        responses=problems(404, 409, 422, 429),
    )
    async def confirm(
        self, state: State, reference: FromPath[str], data: JSONBody[ConfirmIn]
    ) -> WaitlistOut:
        body = await waitlist.confirm(
            reference, data.party, data.code, now=utcnow(), settings=state.settings
        )
        return msgspec.convert(body, WaitlistOut)

    @get(
        "/{reference:str}",
        summary="View an entry, its place and any offer (X-Manage-Token)",
        responses=problems(404),
    )
    async def view(
        self, reference: FromPath[str], x_manage_token: ManageToken = None
    ) -> WaitlistOut:
        return msgspec.convert(
            await waitlist.view(reference, x_manage_token, now=utcnow()), WaitlistOut
        )

    @post(
        "/{reference:str}/leave",
        summary="Leave the waiting list; a pending offer is given back (X-Manage-Token)",
        status_code=200,
        responses=problems(404, 409),
    )
    async def leave(
        self, state: State, reference: FromPath[str], x_manage_token: ManageToken = None
    ) -> WaitlistOut:
        body = await waitlist.leave(
            reference, x_manage_token, now=utcnow(), settings=state.settings
        )
        return msgspec.convert(body, WaitlistOut)
