"""What the store hands across package boundaries: small frozen records, not rows.

Piccolo and the raw hot-path reads give ``dict[str, Any]`` rows; mypy checks
nothing of what flows through such a dict (a misspelt key is a run-time
``KeyError``, a wrong type goes unnoticed). So the store turns the rows of an
office, a slot, an appointment and a party into these records once, where they are
read, and the use cases and pages take attributes (``slot.office.tz``). Dicts stay
inside the store and in the API serialisers (``public_view``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.db.fastread import columns, nest
from scheduler.db.seats import Seat
from scheduler.db.tables import Office, Slot
from scheduler.domain.calendar import onsite_window_start


@dataclass(frozen=True, slots=True)
class OfficeRecord:
    id: int
    code: str
    name_zh: str
    name_en: str
    address_zh: str
    address_en: str
    region: str
    timezone: str
    counters: int
    day_cap: int  # couples per local day, all services together
    onsite_cap: int  # people (a couple counts two) per one-hour hall window
    booking_days_ahead: int
    booking_opens_at: str  # "HH:MM", office time
    hold_minutes: int
    active: bool
    designated: bool

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # cached by zoneinfo: no file read per call

    @property
    def opens_at(self) -> time:
        return time.fromisoformat(self.booking_opens_at)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OfficeRecord:
        # SQLite gives booleans back as 0/1 from raw statements.
        values = {name: row[name] for name in _OFFICE_FIELDS}
        values["active"], values["designated"] = bool(row["active"]), bool(row["designated"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SlotRecord:
    id: int
    office: OfficeRecord
    service: str
    day: date  # the office's local date
    start_at: datetime  # UTC
    end_at: datetime
    capacity: int
    booked: int
    blocked: bool  # by an active blackout or suspension
    reduced_capacity: int | None  # a "discouraged" day's lower cap
    held: int  # unconfirmed first-come holds among ``booked``
    waiting: int  # holds beyond the share waiting for a seat (not among ``booked``)

    @property
    def cap(self) -> int:
        """The cap in force: a discouraged day's lower one, else the slot's."""
        return self.reduced_capacity if self.reduced_capacity is not None else self.capacity

    def seat(self, people: int) -> Seat:
        """The seat ``people`` take in this slot: slot, office-day and hall window."""
        return Seat(
            slot_id=self.id,
            office_id=self.office.id,
            day=self.day,
            window_start=onsite_window_start(self.start_at, self.office.tz),
            people=people,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], office: OfficeRecord) -> SlotRecord:
        """``row``: a slot row (its ``office`` column an id or a nested dict)."""
        values = {name: row[name] for name in _SLOT_FIELDS if name != "office"}
        values["blocked"] = bool(row["blocked"])
        return cls(office=office, **values)


@dataclass(frozen=True, slots=True)
class AppointmentRecord:
    id: int
    reference: str
    manage_token_hash: str
    slot: SlotRecord  # an appointment's office is always its slot's (moves change both)
    service: str
    status: str
    locale: str
    people: int
    hold_expires_at: datetime | None
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    erased_at: datetime | None
    # No seat taken yet: the unconfirmed share was full (seats.take_awaited_seat).
    awaiting_seat: bool

    @property
    def office(self) -> OfficeRecord:
        return self.slot.office

    def hold_lapsed(self, now: datetime) -> bool:
        """Its hold time has run out (a pending hold always has one)."""
        return self.hold_expires_at is not None and self.hold_expires_at <= now

    @classmethod
    def from_row(cls, row: Mapping[str, Any], slot: SlotRecord) -> AppointmentRecord:
        values = {name: row[name] for name in _APPOINTMENT_FIELDS if name != "slot"}
        values["awaiting_seat"] = bool(row["awaiting_seat"])
        return cls(slot=slot, **values)


@dataclass(frozen=True, slots=True)
class PartyRecord:
    """One partner of a couple (a ``party`` row, whatever its owner). The code hash
    is left out: only the attempt counter compares it, reading it afresh as it spends
    an attempt (scheduler/usecases/couples/attempts.py)."""

    id: int
    role: str  # "a" or "b"
    name: str
    id_type: str
    # The ID number's stored forms ("" once erased): sealed for reveals, masked for
    # lists (it keeps what party_kind reads), keyed hashes for look-ups.
    id_sealed: str
    id_masked: str
    id_hash: str
    number_hash: str  # "" where not known
    phone: str
    code_attempts: int
    confirmed_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PartyRecord:
        values = {name: row[name] for name in _PARTY_FIELDS}
        values["number_hash"] = row["number_hash"] or ""
        return cls(**values)


_OFFICE_FIELDS = tuple(f.name for f in fields(OfficeRecord))
_SLOT_FIELDS = tuple(f.name for f in fields(SlotRecord))
_APPOINTMENT_FIELDS = tuple(f.name for f in fields(AppointmentRecord))
_PARTY_FIELDS = tuple(f.name for f in fields(PartyRecord))


def office_of(row: Mapping[str, Any]) -> OfficeRecord:
    """An office row (Piccolo or raw) as a record."""
    return OfficeRecord.from_row(row)


def party_of(row: Mapping[str, Any]) -> PartyRecord:
    """A party row (Piccolo or raw) as a record."""
    return PartyRecord.from_row(row)


def slot_of(row: Mapping[str, Any]) -> SlotRecord:
    """A slot row with its office nested under ``"office"`` as a record."""
    return SlotRecord.from_row(row, office_of(row["office"]))


_SLOT_SQL = (
    "SELECT "  # noqa: S608 - column names come from the table classes
    + ", ".join(columns("s", Slot, skip=("office",)) + columns("o", Office, nested_as="office"))
    + " FROM slot s JOIN office o ON o.id = s.office WHERE s.id = {}"
)


async def load_slot(slot_id: int) -> SlotRecord | None:
    """One slot with its office, in one statement."""
    rows = await Slot.raw(_SLOT_SQL, slot_id)
    return slot_of(nest(rows[0])) if rows else None
