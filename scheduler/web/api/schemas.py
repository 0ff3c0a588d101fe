"""Request and response bodies of the public API (they make the OpenAPI document).

Requests forbid unknown fields: a misspelt field is a 422, never silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

IdType = Literal["mainland_id", "hk_macau_permit", "taiwan_permit", "passport"]
Service = Literal["marriage", "divorce", "reissue", "ceremony", "counselling"]
Locale = Literal["zh-Hans", "zh-Hant", "en"]
DayStatusName = Literal[
    "open", "full", "closed", "blackout", "discouraged", "not_yet_open", "lottery", "past"
]


class PartyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    id_type: IdType
    id_number: Annotated[str, Meta(min_length=1, max_length=32)]
    phone: Annotated[
        str, Meta(min_length=3, max_length=32, description="Mobile number, E.164 or national")
    ]


class BookingIn(msgspec.Struct, forbid_unknown_fields=True):
    slot_id: Annotated[int, Meta(ge=1, le=2**31 - 1)]
    service: Service
    party_a: PartyIn
    party_b: PartyIn
    locale: Locale = "zh-Hans"


class ConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    party: Literal["a", "b"]
    code: Annotated[str, Meta(min_length=1, max_length=12)]


class MoveIn(msgspec.Struct, forbid_unknown_fields=True):
    slot_id: Annotated[int, Meta(ge=1, le=2**31 - 1)]


class OfficeOut(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str
    address_zh: str
    address_en: str
    timezone: str


class SuspensionOut(msgspec.Struct):
    """The current or next suspension of a service (scheduler/usecases/offices/suspensions.py)."""

    from_: str = msgspec.field(name="from")
    to: str
    reason: dict[str, str]
    now: bool


class OfficeServiceOut(msgspec.Struct):
    service: str
    slot_minutes: int
    suspended: bool
    suspension: SuspensionOut | None = None


class OfficeListItem(OfficeOut):
    region: str
    services: list[OfficeServiceOut]


class SlotOut(msgspec.Struct):
    id: int
    start: str
    end: str
    capacity: int
    remaining: int


class DayLotteryOut(msgspec.Struct):
    """A lottery date's application window (details at /api/v1/lotteries/{id})."""

    id: int
    opens_at: str
    closes_at: str
    status: str


class DayOut(msgspec.Struct):
    date: str
    status: DayStatusName
    reason: str | None
    slots: list[SlotOut]
    lottery: DayLotteryOut | None = None


class AvailabilityOut(msgspec.Struct, rename={"from_": "from"}):
    office: OfficeOut
    service: str
    from_: str
    to: str
    days: list[DayOut]


class AppointmentSlotOut(msgspec.Struct):
    id: int
    date: str
    start: str
    end: str
    start_at: str
    end_at: str


class PartyOut(msgspec.Struct):
    role: str
    name: str
    id_type: str
    id_number_masked: str
    phone_masked: str
    confirmed: bool


class ChecklistDocumentOut(msgspec.Struct):
    key: str
    label: dict[str, str]  # per locale


class ChecklistPartyOut(msgspec.Struct):
    role: str
    kind: str  # mainland, hk_macau, taiwan, foreign, residence_permit
    documents: list[ChecklistDocumentOut]


class ChecklistOut(msgspec.Struct):
    """What each partner brings, from the rule set in force on the appointment's day."""

    effective_from: str
    source: dict[str, str]
    parties: list[ChecklistPartyOut]


class AppointmentOut(msgspec.Struct, omit_defaults=True):
    reference: str
    status: str
    service: str
    locale: str
    office: OfficeOut
    slot: AppointmentSlotOut
    hold_expires_at: str | None
    created_at: str | None
    parties: list[PartyOut]
    # Set when a blackout moved the booking (or could not): where it was before.
    rescheduled_from: AppointmentSlotOut | None = None
    # On the view of a booking (GET): the documents to bring.
    checklist: ChecklistOut | None = None
    # False while a hold waits for its seat (the unconfirmed share of the slot was
    # full, issue 13.3): the seat is taken when both partners have confirmed.
    seat_held: bool = True


class HoldOut(AppointmentOut, kw_only=True):
    manage_token: str
