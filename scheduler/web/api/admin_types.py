"""Typed answers of the admin API, so that the OpenAPI document describes them and
the signed-in fuzz run (tests/test_schemathesis_staff.py) checks every field.

Each struct mirrors the dict its use case returns (``msgspec.convert`` would drop a
field the struct does not name: keep them in step)."""

from __future__ import annotations

import msgspec


class BlackoutOut(msgspec.Struct):
    id: int
    kind: str
    start_date: str
    end_date: str
    start_time: str | None
    end_time: str | None
    services: list[str]
    # zh-Hans, zh-Hant and en
    reason: dict[str, str]
    offices: list[str]
    cap_percent: int
    allow_other_office: bool
    lifted: bool


class RunSmsOut(msgspec.Struct):
    queued: int
    sent: int
    delivered: int
    failed: int


class RunOut(msgspec.Struct):
    id: int
    # None: the excess move of a lowered cap, not a blackout's run
    blackout: int | None
    status: str
    total: int
    moved: int
    needs_rebooking: int
    notified: int
    sms: RunSmsOut


class AffectedGroupOut(msgspec.Struct):
    office: str
    service: str
    date: str
    appointments: int


class PlacementOut(msgspec.Struct):
    appointment: int
    from_slot: int
    to_slot: int | None
    to_office: str | None
    to_date: str | None
    to_time: str | None


class PreviewOut(msgspec.Struct):
    affected: int
    by_office_service_day: list[AffectedGroupOut]
    slots_covered: int
    placeable: int
    unplaceable: int
    sms: int
    sms_segments: int
    placements: list[PlacementOut]


class DeclaredOut(msgspec.Struct):
    """A dry run has ``preview``; a declaration has ``blackout`` (and ``run`` when
    couples are moved: a ``closed`` blackout)."""

    dry_run: bool
    preview: PreviewOut | None = None
    blackout: BlackoutOut | None = None
    run: RunOut | None = None


class HotDateOut(msgspec.Struct):
    date: str
    kinds: list[str]
    label_zh: str
    label_en: str
