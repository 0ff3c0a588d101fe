"""Load offices and services from a TOML file (the demo data in config/offices.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from piccolo.columns import Column

from scheduler.db.engine import write_transaction
from scheduler.db.tables import Office, OfficeService
from scheduler.domain.services import SERVICES

# The office columns a demo file (and an admin) sets; scheduler/usecases/offices/offices.py
# adds `active`.
OFFICE_FIELDS = (
    "name_zh",
    "name_en",
    "address_zh",
    "address_en",
    "region",
    "timezone",
    "counters",
    "day_cap",
    "onsite_cap",
    "booking_days_ahead",
    "booking_opens_at",
    "hold_minutes",
)


def read_offices(path: Path) -> list[dict[str, Any]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    defaults = data.get("defaults", {})
    offices = []
    for raw in data.get("office", []):
        office = {k: v for k, v in defaults.items() if k != "weekly_hours"} | raw
        office["service"] = [
            {"weekly_hours": defaults.get("weekly_hours", {})} | svc
            for svc in raw.get("service", [])
        ]
        for svc in office["service"]:
            if svc["service"] not in SERVICES:
                raise ValueError(
                    f"{path}: office {office['code']}: unknown service {svc['service']!r}"
                )
        offices.append(office)
    return offices


async def load_offices(path: Path) -> int:
    """Insert or update every office of the file, matched by code. Returns the count."""
    offices = read_offices(path)
    async with write_transaction():
        for office in offices:
            values = {k: office[k] for k in OFFICE_FIELDS if k in office}
            # The province's designation (a fact of the deployment, not an admin's
            # form field): from the file only.
            values["designated"] = bool(office.get("designated", False))
            existing = await Office.select(Office.id).where(Office.code == office["code"]).first()
            if existing is None:
                rows = await Office.insert(Office(code=office["code"], **values)).returning(
                    Office.id
                )
                office_id = rows[0]["id"]
            else:
                office_id = existing["id"]
                await Office.update({getattr(Office, k): v for k, v in values.items()}).where(
                    Office.id == office_id
                )
            for svc in office["service"]:
                await _upsert_service(office_id, svc)
    return len(offices)


async def _upsert_service(office_id: int, svc: dict[str, Any]) -> None:
    values: dict[Column | str, Any] = {
        OfficeService.slot_minutes: svc.get("slot_minutes", 30),
        OfficeService.slot_cap: svc.get("slot_cap", 4),
        OfficeService.weekly_hours: svc["weekly_hours"],
    }
    where = (OfficeService.office == office_id) & (OfficeService.service == svc["service"])
    if await OfficeService.exists().where(where):
        await OfficeService.update(values).where(where)
    else:
        await OfficeService.insert(
            OfficeService(
                office=office_id,
                service=svc["service"],
                **{c._meta.name: v for c, v in values.items() if isinstance(c, Column)},
            )
        )
