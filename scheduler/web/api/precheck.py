"""Document pre-check over the API: the couple's own (X-Manage-Token) and the
office's review (staff bearer token, office-scoped like the desk API)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import Meta

from scheduler.domain.precheck import PartyData
from scheduler.kernel.clock import utcnow
from scheduler.usecases.desk import precheck
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.desk import scoped_office
from scheduler.web.api.public import ManageToken, problems
from scheduler.web.auth import client_ip, provide_staff, requires_role

Short = Annotated[str, Meta(max_length=200)]


class PartyPrecheckIn(msgspec.Struct, forbid_unknown_fields=True):
    nationality: Annotated[str, Meta(max_length=8, description="ISO 3166-1 alpha-2, e.g. CN")]
    hukou_address: Annotated[
        str,
        Meta(max_length=500, description="Ignored: no rule set since 2025-05-10 asks for it"),
    ] = ""
    birth_date: Annotated[
        str, Meta(max_length=32, description="YYYY-MM-DD, where the party's `fields` ask it")
    ] = ""
    sex: Annotated[str, Meta(max_length=16, description="male or female, where asked")] = ""
    occupation: Short = ""
    education: Short = ""
    marital_status: Annotated[
        str, Meta(max_length=200, description="Before a marriage: unmarried, divorced, widowed")
    ] = ""
    documents: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(max_length=10)] = []


class PrecheckIn(msgspec.Struct, forbid_unknown_fields=True):
    party_a: PartyPrecheckIn
    party_b: PartyPrecheckIn


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["approved", "needs_correction"]
    note: Annotated[str, Meta(max_length=2000)] = ""
    version: (
        Annotated[int, Meta(ge=1, description="The version reviewed (409 if changed)")] | None
    ) = None


class PartyPrecheckOut(msgspec.Struct):
    role: str
    name: str
    id_type: str
    id_number_masked: str
    phone_masked: str
    nationality: str
    occupation: str
    education: str
    marital_status: str
    hukou_address: str
    documents: list[str]
    required_documents: list[str]
    missing_documents: list[str]
    kind: str
    fields: list[str]
    birth_date: str
    sex: str
    # Per required document: its label per locale, from the rule set in force.
    document_labels: dict[str, dict[str, str]]


class PrecheckOut(msgspec.Struct):
    reference: str
    service: str
    offered: bool
    appointment_status: str
    date: str
    start: str
    status: Literal["not_submitted", "submitted", "approved", "needs_correction"]
    version: int
    note: str
    reviewed_at: str | None
    submitted_at: str | None
    editable: bool
    fields: list[str]
    rule_set: str
    parties: list[PartyPrecheckOut]


class MaskedPartyOut(msgspec.Struct):
    role: str
    name: str
    id_type: str
    id_number_masked: str
    phone_masked: str


class PrecheckItemOut(msgspec.Struct):
    reference: str
    service: str
    appointment_status: str
    start: str
    status: str
    version: int
    submitted_at: str | None
    reviewed_at: str | None
    reviewer: str
    parties: list[MaskedPartyOut]


def _party(data: PartyPrecheckIn) -> PartyData:
    return PartyData(
        nationality=data.nationality,
        occupation=data.occupation,
        education=data.education,
        marital_status=data.marital_status,
        sex=data.sex,
        documents=frozenset(data.documents),
    )


class PrecheckApi(Controller):
    path = "/api/v1/appointments/{reference:str}/precheck"
    tags = ("public",)

    @get(
        "/",
        summary="The couple's document pre-check (X-Manage-Token)",
        responses=problems(404),
    )
    async def show(
        self, reference: FromPath[str], x_manage_token: ManageToken = None
    ) -> PrecheckOut:
        body = await precheck.view(reference, x_manage_token, now=utcnow())
        return msgspec.convert(body, PrecheckOut)

    @put(
        "/",
        summary="Submit or update the pre-entry data and document checklist (X-Manage-Token)",
        responses=problems(404, 409, 422),
    )
    async def submit(
        self,
        reference: FromPath[str],
        data: JSONBody[PrecheckIn],
        x_manage_token: ManageToken = None,
    ) -> PrecheckOut:
        submission = precheck.Submission(
            party_a=_party(data.party_a),
            party_b=_party(data.party_b),
            birth_a=data.party_a.birth_date,
            birth_b=data.party_b.birth_date,
        )
        body = await precheck.submit(reference, x_manage_token, submission, now=utcnow())
        return msgspec.convert(body, PrecheckOut)


class PrecheckStaffApi(Controller):
    path = "/api/v1/offices/{office:str}/prechecks"
    tags = ("desk",)
    guards = [requires_role("clerk")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @get(
        "/",
        summary="Pre-checks of one day (parties masked)",
        responses=problems(401, 403, 404, 422),
    )
    async def day(
        self,
        office: FromPath[str],
        member: NamedDependency[StaffMember],
        date_: Annotated[date | None, QueryParameter(name="date", required=False)] = None,
        status: FromQuery[str | None] = None,
    ) -> list[PrecheckItemOut]:
        row = await scoped_office(office, member)
        day = date_ or utcnow().astimezone(row.tz).date()
        return msgspec.convert(
            await precheck.office_list(row, day, status or None), list[PrecheckItemOut]
        )

    @get(
        "/{reference:str}",
        summary="One pre-check with its data and checklist",
        responses=problems(401, 403, 404),
    )
    async def detail(
        self, office: FromPath[str], reference: FromPath[str], member: NamedDependency[StaffMember]
    ) -> PrecheckOut:
        row = await scoped_office(office, member)
        body = await precheck.staff_view(row.id, reference, now=utcnow())
        return msgspec.convert(body, PrecheckOut)

    @post(
        "/{reference:str}/review",
        status_code=200,
        summary="Approve, or ask for a correction with a note (audited; texts both parties)",
        responses=problems(401, 403, 404, 409, 422),
    )
    async def review(
        self,
        request: Request[Any, Any, Any],
        office: FromPath[str],
        reference: FromPath[str],
        data: JSONBody[ReviewIn],
        member: NamedDependency[StaffMember],
    ) -> PrecheckOut:
        row = await scoped_office(office, member)
        body = await precheck.review(
            row.id,
            reference,
            data.decision,
            data.note,
            version=data.version,
            actor=member,
            ip=client_ip(request),
            now=utcnow(),
            settings=request.app.state.settings,
        )
        return msgspec.convert(body, PrecheckOut)
