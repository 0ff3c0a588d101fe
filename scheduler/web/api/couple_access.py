"""The couple's own access over the API (issue 14): a code texted again, a partner
confirming with their own phone number, and a lost manage code recovered by SMS.
All of them text or check codes, so they sit behind the per-client SMS limit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from scheduler.kernel.clock import utcnow
from scheduler.usecases.booking import access as couple_access
from scheduler.web.api.public import ManageToken, problems
from scheduler.web.api.schemas import AppointmentOut

Phone = Annotated[str, Meta(min_length=3, max_length=32, description="Mobile, E.164 or national")]
Code = Annotated[str, Meta(min_length=1, max_length=12)]


class ResendIn(msgspec.Struct, forbid_unknown_fields=True):
    party: Literal["a", "b"]


class PhoneIn(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone


class PhoneCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone
    code: Code


class CodeStatusOut(msgspec.Struct):
    attempts_left: int
    resends_left: int


class AcceptedOut(msgspec.Struct):
    """Sent if the reference and phone match a booking; the answer never says which."""

    status: Literal["accepted"] = "accepted"


class RecoveredOut(AppointmentOut):
    manage_token: str = ""


class CoupleAccessApi(Controller):
    path = "/api/v1/appointments/{reference:str}"
    tags = ("public",)

    @post(
        "/codes/resend",
        summary="Text one partner a new code (X-Manage-Token); limited per partner",
        status_code=200,
        responses=problems(404, 409, 422, 429),
    )
    async def resend(
        self,
        state: State,
        reference: FromPath[str],
        data: JSONBody[ResendIn],
        x_manage_token: ManageToken = None,
    ) -> dict[str, CodeStatusOut]:
        status = await couple_access.resend(
            reference, x_manage_token, data.party, now=utcnow(), settings=state.settings
        )
        return msgspec.convert(status, dict[str, CodeStatusOut])

    @post(
        "/codes/resend-to-phone",
        summary="A partner asks for their code again with their own phone number",
        status_code=202,
        responses=problems(422, 429),
    )
    async def resend_to_phone(
        self, state: State, reference: FromPath[str], data: JSONBody[PhoneIn]
    ) -> AcceptedOut:
        await couple_access.resend_to_phone(
            reference, data.phone, now=utcnow(), settings=state.settings
        )
        return AcceptedOut()

    @post(
        "/confirm-by-phone",
        summary="A partner confirms with their own phone number and code",
        status_code=200,
        responses=problems(404, 409, 422, 429),
    )
    async def confirm_by_phone(
        self, state: State, reference: FromPath[str], data: JSONBody[PhoneCodeIn]
    ) -> AppointmentOut:
        body = await couple_access.confirm_by_phone(
            reference, data.phone, data.code, now=utcnow(), settings=state.settings
        )
        return msgspec.convert(body, AppointmentOut)

    @post(
        "/recovery",
        summary="Text a code to a partner's phone to recover a lost manage code",
        status_code=202,
        responses=problems(422, 429),
    )
    async def start_recovery(
        self, state: State, reference: FromPath[str], data: JSONBody[PhoneIn]
    ) -> AcceptedOut:
        await couple_access.start_recovery(
            reference, data.phone, now=utcnow(), settings=state.settings
        )
        return AcceptedOut()

    @post(
        "/recovery/confirm",
        summary="The recovery code gives the booking a new manage code (returned once)",
        status_code=200,
        responses=problems(404, 422, 429),
    )
    async def finish_recovery(
        self, state: State, reference: FromPath[str], data: JSONBody[PhoneCodeIn]
    ) -> Response[Any]:
        body = await couple_access.finish_recovery(
            reference, data.phone, data.code, now=utcnow(), settings=state.settings
        )
        return Response(msgspec.convert(body, RecoveredOut))
