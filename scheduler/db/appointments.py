"""Reading appointments: one loader and one public view, shared by every use case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from scheduler.db.fastread import columns, nest
from scheduler.db.records import AppointmentRecord, OfficeRecord, SlotRecord, office_of
from scheduler.db.seats import Seat
from scheduler.db.tables import Appointment, Office, Party, Slot
from scheduler.domain.identity import mask_phone
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import normalize_reference, tokens_match

ACTIVE_STATUSES = ("pending_confirmation", "confirmed")


@dataclass(frozen=True, slots=True)
class Loaded:
    """An appointment with its slot, office and parties, as the use cases get it."""

    appointment: AppointmentRecord
    # Dicts until the party tables are merged into one (issue 15, item 3).
    parties: list[dict[str, Any]]

    @property
    def id(self) -> int:
        return self.appointment.id

    @property
    def slot(self) -> SlotRecord:
        return self.appointment.slot

    @property
    def office(self) -> OfficeRecord:
        return self.appointment.slot.office

    @property
    def tz(self) -> ZoneInfo:
        return self.office.tz

    @property
    def seat(self) -> Seat:
        return self.slot.seat(self.appointment.people)

    def party(self, role: str) -> dict[str, Any]:
        return next(p for p in self.parties if p["role"] == role)


_LOAD_SQL = (
    "SELECT "  # noqa: S608 - column names come from the table classes
    + ", ".join(
        columns("a", Appointment, skip=("office", "slot"))
        + columns("o", Office, nested_as="office")
        + columns("s", Slot, nested_as="slot")
    )
    + " FROM appointment a JOIN office o ON o.id = a.office JOIN slot s ON s.id = a.slot"
    " WHERE a.reference = {}"
)
_PARTIES_SQL = "SELECT * FROM party WHERE appointment = {} ORDER BY role"


async def load(reference: str) -> Loaded | None:
    rows = await Appointment.raw(_LOAD_SQL, normalize_reference(reference))
    if not rows:
        return None
    row = nest(rows[0])
    slot = SlotRecord.from_row(row["slot"], office_of(row["office"]))
    parties = await Party.raw(_PARTIES_SQL, row["id"])
    return Loaded(appointment=AppointmentRecord.from_row(row, slot), parties=parties)


async def load_for_owner(reference: str, token: str | None) -> Loaded:
    """The appointment if the manage token matches; 404 alike for unknown and wrong token,
    so a reference alone never reveals that a booking exists."""
    loaded = await load(reference)
    if loaded is None or not token or not tokens_match(token, loaded.appointment.manage_token_hash):
        raise DomainError("not-found")
    return loaded


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value else None


def slot_view(slot: SlotRecord) -> dict[str, Any]:
    tz = slot.office.tz
    start = slot.start_at.astimezone(tz)
    end = slot.end_at.astimezone(tz)
    return {
        "id": slot.id,
        "date": slot.day.isoformat(),
        "start": start.strftime("%H:%M"),
        "end": end.strftime("%H:%M"),
        "start_at": start.isoformat(),
        "end_at": end.isoformat(),
    }


class OfficeView(TypedDict):
    """An office as the API and pages show it to couples."""

    code: str
    name_zh: str
    name_en: str
    address_zh: str
    address_en: str
    timezone: str


def office_view(office: OfficeRecord) -> OfficeView:
    return {
        "code": office.code,
        "name_zh": office.name_zh,
        "name_en": office.name_en,
        "address_zh": office.address_zh,
        "address_en": office.address_en,
        "timezone": office.timezone,
    }


def masked_party(party: dict[str, Any]) -> dict[str, Any]:
    """A party as lists and views show it: ID number and phone masked."""
    return {
        "role": party["role"],
        "name": party["name"],
        "id_type": party["id_type"],
        "id_number_masked": party["id_masked"],
        "phone_masked": mask_phone(party["phone"]),
        "confirmed": party["confirmed_at"] is not None,
    }


def public_view(loaded: Loaded) -> dict[str, Any]:
    """What the couple sees: their own names, but ID numbers and phones masked."""
    appointment, tz = loaded.appointment, loaded.tz
    return {
        "reference": appointment.reference,
        "status": appointment.status,
        "service": appointment.service,
        "locale": appointment.locale,
        "office": office_view(appointment.office),
        "slot": slot_view(appointment.slot),
        "hold_expires_at": _iso(appointment.hold_expires_at, tz),
        "created_at": _iso(appointment.created_at, tz),
        "parties": [masked_party(p) for p in loaded.parties],
        "seat_held": not appointment.awaiting_seat,
    }
