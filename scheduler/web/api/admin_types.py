"""Typed answers of the admin API, so that the OpenAPI document describes them and
the signed-in fuzz run (tests/test_schemathesis_staff.py) checks every field.

Each struct mirrors the dict its use case returns (``msgspec.convert`` would drop a
field the struct does not name: keep them in step)."""

from __future__ import annotations

from typing import Any

import msgspec


class HotDateOut(msgspec.Struct):
    date: str
    kinds: list[str]
    label_zh: str
    label_en: str


class PolicyOut(msgspec.Struct):
    name: str
    # The policy's own shape (docs/decisions.md, "Editable policies"): an object.
    value: dict[str, Any]
    default: dict[str, Any]
    overridden: bool
    updated_at: str | None
    updated_by: str | None


class BanOut(msgspec.Struct):
    id: int
    id_type: str
    # masked
    id_number: str
    office: str
    kind: str
    strikes: int
    starts_at: str
    ends_at: str
    ends_on: str
    active: bool
    lifted_at: str | None
    lifted_by: str | None


class ServiceOut(msgspec.Struct):
    service: str
    slot_minutes: int
    slot_cap: int
    # {"0": [["09:00", "12:00"], ...]}, Monday = "0"
    weekly_hours: dict[str, list[list[str]]]
    active: bool


class OfficeOut(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str
    address_zh: str
    address_en: str
    region: str
    timezone: str
    counters: int
    day_cap: int
    onsite_cap: int
    booking_days_ahead: int
    booking_opens_at: str
    hold_minutes: int
    active: bool
    services: list[ServiceOut]


class ExcessMovedOut(msgspec.Struct):
    run: int
    # appointment ids moved to other slots
    moved: list[int]


class OfficeServiceSavedOut(OfficeOut):
    """The office after the change; ``moved``: couples moved off over-cap slots."""

    moved: ExcessMovedOut | None = None


class SuspensionOut(msgspec.Struct, omit_defaults=True):
    id: int
    service: str
    offices: list[str]
    start_date: str
    end_date: str
    reason: dict[str, str]
    notified: int
    lifted: bool
    # Only in the list: whether this admin may lift it (all its offices are theirs).
    liftable: bool | None = None


class OfficeNamesOut(msgspec.Struct):
    zh: str
    en: str


class LotteryOut(msgspec.Struct):
    """What anyone may see of a lottery (public_view in
    scheduler/usecases/calendar/lottery_days.py)."""

    id: int
    date: str
    service: str
    status: str
    offices: list[str]
    office_names: dict[str, OfficeNamesOut]
    timezone: str
    opens_at: str | None
    closes_at: str | None
    draw_at: str | None
    confirm_hours: int
    seed_sha256: str
    # After the draw only: the seed and the applications' references in draw order.
    seed: str | None
    drawn_at: str | None
    draw_order: list[str]


class LotteryAdminOut(LotteryOut):
    # applications per status
    applications: dict[str, int]
    created_by: str


class ReportOut(msgspec.Struct):
    report: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    offices: list[str] = msgspec.field(default_factory=list)
    # table name -> rows (columns per report: docs/decisions.md, "Reports")
    tables: dict[str, list[dict[str, Any]]] = msgspec.field(default_factory=dict)


class AuditEntryOut(msgspec.Struct):
    id: int
    at: str
    actor: str
    action: str
    office: str
    object_type: str
    object_id: str
    # what changed: the recorded values before and after (JSON as recorded)
    before: Any
    after: Any
    ip: str


class AuditPageOut(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str = ""
    page: int = 1
    page_size: int = 50
    total: int = 0
    entries: list[AuditEntryOut] = msgspec.field(default_factory=list)


class HolidayNoticeYearOut(msgspec.Struct):
    year: int
    title: str
    document_number: str
    published_on: str
    url: str
    # "shipped" (config/holidays) or "loaded" (by a superadmin)
    source: str
    version: int
    loaded_by: str | None
    loaded_at: str | None
    # the notice's holiday blocks, as in config/holidays/<year>.toml
    blocks: list[dict[str, Any]]


class MissingYearOut(msgspec.Struct):
    year: int
    reaches: str
    offices: list[str]


class StatutoryOut(msgspec.Struct):
    title: str
    source: str
    effective_from: str


class HolidayOverviewOut(msgspec.Struct):
    notices: list[HolidayNoticeYearOut]
    missing: list[MissingYearOut]
    statutory: StatutoryOut


class DaySpanOut(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str = ""


class ClosingOut(DaySpanOut):
    holidays: list[str] = msgspec.field(default_factory=list)


class OfficeDayCountOut(msgspec.Struct):
    office: str
    date: str
    appointments: int


class HolidayPreviewOut(msgspec.Struct):
    # the notice as it would be stored
    notice: dict[str, Any]
    version: int
    replaces: bool
    closing: list[ClosingOut]
    opening: list[str]
    closing_with_slots: list[DaySpanOut]
    affected: int
    by_office_day: list[OfficeDayCountOut]


class HolidayBlackoutOut(msgspec.Struct):
    blackout: int
    run: int | None
    from_: str = msgspec.field(name="from")
    to: str = ""


class HolidayLoadedOut(msgspec.Struct):
    year: int
    version: int
    blackouts: list[HolidayBlackoutOut]
    slots_added: int
    affected: int


# --- the desk (clerks and up) ---------------------------------------------------------------


class MaskedPartyOut(msgspec.Struct):
    role: str
    name: str
    id_type: str
    id_number_masked: str
    phone_masked: str
    confirmed: bool


class DayAppointmentOut(msgspec.Struct):
    reference: str
    status: str
    service: str
    start: str
    end: str
    ticket: str | None
    # the couple's document pre-check: absent when none was submitted
    precheck: str | None
    parties: list[MaskedPartyOut]


class RevealedPartyOut(msgspec.Struct):
    role: str
    name: str
    id_type: str
    id_number: str
    phone: str


class RevealedOut(msgspec.Struct):
    reference: str
    parties: list[RevealedPartyOut]


class BoardOfficeOut(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str


class CalledOut(msgspec.Struct):
    label: str
    counter: str | None
    status: str


class QueueStateOut(msgspec.Struct):
    office: BoardOfficeOut
    date: str
    called: list[CalledOut]
    next: list[str]
    waiting: int
    expected_wait_minutes: int
    at: str


class RuleSetVersionOut(msgspec.Struct):
    jurisdiction: str
    effective_from: str
    # where the rules come from (title, document, url, …)
    source: dict[str, Any]
    # "shipped" (config) or "added" (by a superadmin)
    origin: str
    created_by: str | None
    created_at: str | None
    future: bool
    # the rule set as written (docs/decisions.md)
    body: dict[str, Any]


class RuleSetsOut(msgspec.Struct):
    in_force: str
    versions: list[RuleSetVersionOut]
