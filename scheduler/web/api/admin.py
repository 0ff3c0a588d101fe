"""Admin API: blackouts, their reschedule runs, and the hot-date calendar."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import Meta

from scheduler.domain.hotdates import hot_dates
from scheduler.kernel.clock import utcnow
from scheduler.kernel.errors import DomainError
from scheduler.usecases.offices import blackouts
from scheduler.usecases.staff.accounts import StaffMember
from scheduler.web.api.admin_types import HotDateOut
from scheduler.web.api.public import problems
from scheduler.web.auth import provide_staff, requires_role

Clock = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
ServiceName = Literal["marriage", "divorce", "reissue", "ceremony", "counselling"]


class ReasonIn(
    msgspec.Struct, forbid_unknown_fields=True, rename={"zh_hans": "zh-Hans", "zh_hant": "zh-Hant"}
):
    zh_hans: Annotated[str, Meta(min_length=1, max_length=60)]
    en: Annotated[str, Meta(max_length=80)] = ""
    zh_hant: Annotated[str, Meta(max_length=60)] = ""


class BlackoutIn(msgspec.Struct, forbid_unknown_fields=True):
    offices: list[Annotated[str, Meta(min_length=1, max_length=16)]] | Literal["all"]
    start_date: date
    end_date: date
    kind: Literal["closed", "no_new_bookings", "discouraged"]
    reason: ReasonIn
    region: Annotated[str, Meta(max_length=32)] | None = None
    start_time: Clock | None = None
    end_time: Clock | None = None
    services: list[ServiceName] = msgspec.field(default_factory=list)
    cap_percent: Annotated[int, Meta(ge=0, le=99)] = 50
    allow_other_office: bool = False
    dry_run: bool = False
    # From the dry run of this very declaration; required over more than one office.
    preview_token: Annotated[str, Meta(max_length=200)] | None = None


class PlacementOut(msgspec.Struct):
    """One couple of the preview: by reference and local times, never internal ids."""

    reference: str
    from_office: str
    from_date: str
    from_time: str
    to_office: str | None
    to_date: str | None
    to_time: str | None


class GroupOut(msgspec.Struct):
    office: str
    service: str
    date: str
    appointments: int


class PreviewOut(msgspec.Struct):
    offices: list[str]
    kind: str
    start_date: str
    end_date: str
    start_time: str | None
    end_time: str | None
    services: list[str]
    affected: int
    by_office_service_day: list[GroupOut]
    slots_covered: int
    placeable: int
    unplaceable: int
    sms: int
    sms_segments: int
    placements: list[PlacementOut]


class BlackoutOut(msgspec.Struct):
    id: int
    kind: str
    start_date: str
    end_date: str
    start_time: str | None
    end_time: str | None
    services: list[str]
    reason: dict[str, str]
    offices: list[str]
    cap_percent: int
    allow_other_office: bool
    lifted: bool


class SmsCountsOut(msgspec.Struct):
    queued: int
    sent: int
    delivered: int
    failed: int


class RunOut(msgspec.Struct):
    id: int
    blackout: int | None
    status: str
    total: int
    moved: int
    needs_rebooking: int
    notified: int
    sms: SmsCountsOut


class DeclareOut(msgspec.Struct):
    """A dry run: ``preview`` and the token to declare it with; a declaration:
    ``blackout`` and, for a closure, the reschedule ``run``."""

    dry_run: bool
    preview: PreviewOut | None = None
    preview_token: str | None = None
    preview_expires_at: str | None = None
    blackout: BlackoutOut | None = None
    run: RunOut | None = None


def declaration(data: BlackoutIn) -> blackouts.Declaration:
    # What was typed, per language; readers fall back to zh-Hans (docs/decisions.md).
    reason = {
        "zh-Hans": data.reason.zh_hans,
        "zh-Hant": data.reason.zh_hant.strip(),
        "en": data.reason.en.strip(),
    }
    return blackouts.Declaration(
        kind=data.kind,
        start_date=data.start_date,
        end_date=data.end_date,
        offices=None if data.offices == "all" else list(data.offices),
        all_offices=data.offices == "all" and not data.region,
        region=data.region,
        start_time=time.fromisoformat(data.start_time) if data.start_time else None,
        end_time=time.fromisoformat(data.end_time) if data.end_time else None,
        services=list(data.services),
        reason=reason,
        cap_percent=data.cap_percent,
        allow_other_office=data.allow_other_office,
    )


def scope_of(member: StaffMember) -> frozenset[int] | None:
    return None if member.role == "superadmin" else member.offices


class AdminApi(Controller):
    path = "/api/v1/admin"
    tags = ("admin",)
    guards = [requires_role("admin")]  # noqa: RUF012 - Litestar's layer attribute
    dependencies = {"member": Provide(provide_staff)}  # noqa: RUF012 - Litestar's layer attribute

    @post(
        "/blackouts",
        summary="Declare a blackout (dry_run: preview only)",
        description="A dry run answers the preview and a `preview_token` (15 minutes, this"
        " staff member, exactly this declaration). A declaration over more than one office"
        " must carry it (else 428 `preview-required`; another declaration's or an expired"
        " one: 409).",
        status_code=202,
        responses={
            200: ResponseSpec(DeclareOut, description="dry_run: what it would do"),
            **problems(401, 403, 404, 409, 422, 428),
        },
    )
    async def declare(
        self, data: JSONBody[BlackoutIn], member: NamedDependency[StaffMember], state: State
    ) -> Response[DeclareOut]:
        result = await blackouts.declare(
            declaration(data),
            now=utcnow(),
            actor=member,
            scope=scope_of(member),
            dry_run=data.dry_run,
            settings=state.settings,
            preview_token=data.preview_token,
            preview_required_over=1,
        )
        body = msgspec.convert(result, DeclareOut)
        return Response(body, status_code=200 if data.dry_run else 202)

    @delete(
        "/blackouts/{blackout_id:int}",
        status_code=200,
        summary="Lift a blackout",
        responses=problems(401, 403, 404, 409),
    )
    async def lift(
        self, blackout_id: FromPath[int], member: NamedDependency[StaffMember]
    ) -> BlackoutOut:
        lifted = await blackouts.lift(
            blackout_id, now=utcnow(), actor=member, scope=scope_of(member)
        )
        return msgspec.convert(lifted, BlackoutOut)

    @get("/blackouts/{blackout_id:int}", summary="One blackout", responses=problems(401, 403, 404))
    async def one(
        self, blackout_id: FromPath[int], member: NamedDependency[StaffMember]
    ) -> BlackoutOut:
        return msgspec.convert(await blackouts.view(blackout_id, scope_of(member)), BlackoutOut)

    @get(
        "/reschedule-runs/{run_id:int}",
        summary="Progress of a reschedule run",
        responses=problems(401, 403, 404),
    )
    async def run(self, run_id: FromPath[int], member: NamedDependency[StaffMember]) -> RunOut:
        return msgspec.convert(await blackouts.progress(run_id, scope_of(member)), RunOut)

    @get("/hot-dates", summary="Dates likely to be in demand", responses=problems(401, 403, 422))
    async def hot(
        self,
        from_: Annotated[date, QueryParameter(name="from")],
        to: Annotated[date, QueryParameter(name="to")],
    ) -> list[HotDateOut]:
        try:
            found = hot_dates(from_, to)
        except ValueError as exc:
            raise DomainError(
                "invalid-input", field="to", reason="range-too-long", days=3 * 366
            ) from exc
        return [HotDateOut(h.day.isoformat(), list(h.kinds), h.label_zh, h.label_en) for h in found]
