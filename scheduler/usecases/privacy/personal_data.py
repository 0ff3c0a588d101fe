"""ID numbers at rest: stored sealed, masked and keyed-hashed, never in plaintext.

A party's ID number is kept three ways, each for one use:

- ``id_sealed``: AES-256-GCM (``scheduler.kernel.crypto``, purpose ``id_number``), the only
  copy that gives the number back, opened for a clerk's audited reveal;
- ``id_masked``: what lists and the couple's pages show (``110***********002X``),
  written at booking so that no list ever decrypts;
- ``id_hash``: HMAC(SECRET_KEY) of type and number, for lookups (desk search and
  check-in by ID number) and no-show bans; the one-active-marriage claim uses the
  same hash (``booking.id_claim``).

Key rotation: put the new key first in ``DATA_KEYS`` (keep the old ones after it),
restart, then run ``python -m scheduler reseal``, which re-seals every registered
sealed column (``register_sealed``) in batches; once it reports nothing left under
an old key, remove that key. The partners of bookings, lottery applications and
waiting-list entries are all ``party`` rows; a module that seals a column of its own
calls ``register_sealed`` at import and lists itself in ``SEALED_MODULES`` so the
command imports it.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from piccolo.columns import Column
from piccolo.table import Table

from scheduler.db.engine import write_transaction
from scheduler.db.tables import Party
from scheduler.domain.identity import mask_id
from scheduler.kernel.crypto import SealError, needs_reseal, open_sealed, seal
from scheduler.kernel.errors import DomainError
from scheduler.kernel.security import keyed_hash
from scheduler.settings import Settings

log = logging.getLogger("scheduler.personal_data")

PURPOSE = "id_number"
RESEAL_BATCH = 500


def id_hash(settings: Settings, id_type: str, id_number: str) -> str:
    return keyed_hash(settings.secret_key, "id", f"{id_type}:{id_number}")


def number_hash(settings: Settings, id_number: str) -> str:
    """The keyed hash of a normalised ID number whatever its type: one person's claim
    across ID types (issue 13.7)."""
    return keyed_hash(settings.secret_key, "id-number", id_number)


def id_columns(settings: Settings, id_type: str, id_number: str) -> dict[str, str]:
    """The stored forms of a normalised ID number: Party's ``id_*`` columns."""
    return {
        "id_sealed": seal(settings, PURPOSE, id_number),
        "id_masked": mask_id(id_number),
        "id_hash": id_hash(settings, id_type, id_number),
    }


def open_id(settings: Settings, party: dict[str, Any]) -> str:
    """The full ID number of a party row ("" once erased). A value no configured key
    opens is an operator's mistake (a key removed from DATA_KEYS too early): it is
    logged and answered 503, never shown as garbage."""
    if not party["id_sealed"]:
        return ""
    try:
        return open_sealed(settings, PURPOSE, party["id_sealed"])
    except SealError as exc:
        log.error("party %s: ID number cannot be opened: %s", party.get("id"), exc)
        raise DomainError("service-unavailable") from exc


@dataclass(frozen=True)
class SealedColumn:
    table: type[Table]
    column: str  # a Text column holding scheduler.kernel.crypto sealed values, "" when empty
    purpose: str


SEALED: list[SealedColumn] = [SealedColumn(Party, "id_sealed", PURPOSE)]
# Modules that call register_sealed at import (one line each).
# (None today: the partners of lottery applications and waiting-list entries are
# ``party`` rows since issue 15, re-sealed with the bookings'.)
SEALED_MODULES: tuple[str, ...] = ()


def register_sealed(table: type[Table], column: str, purpose: str) -> None:
    entry = SealedColumn(table, column, purpose)
    if entry not in SEALED:
        SEALED.append(entry)


@dataclass
class ResealReport:
    checked: int = 0
    resealed: int = 0
    unopenable: int = 0


async def reseal(settings: Settings, *, batch: int = RESEAL_BATCH) -> ResealReport:
    """Re-seal every registered value sealed with a key other than the current one.

    One short transaction per batch of ``batch`` rows; each row is updated only if
    its sealed value is still the one read (a racing erasure or edit wins), so it
    is safe beside the running service and in several processes at once."""
    for module in SEALED_MODULES:
        importlib.import_module(module)
    report = ResealReport()
    for entry in list(SEALED):
        await _reseal_column(settings, entry, batch, report)
    return report


async def _reseal_column(
    settings: Settings, entry: SealedColumn, batch: int, report: ResealReport
) -> None:
    table, col = entry.table, entry.table._meta.get_column_by_name(entry.column)
    pk: Column = table._meta.primary_key
    last = 0
    while True:
        rows = (
            await table.select(pk.as_alias("pk"), col.as_alias("value"))
            .where((pk > last) & (col != ""))
            .order_by(pk)
            .limit(batch)
        )
        if not rows:
            return
        last = rows[-1]["pk"]
        report.checked += len(rows)
        changes = []
        for row in rows:
            if not needs_reseal(settings, row["value"]):
                continue
            try:
                plain = open_sealed(settings, entry.purpose, row["value"])
            except SealError:
                report.unopenable += 1
                continue
            changes.append((row["pk"], row["value"], seal(settings, entry.purpose, plain)))
        if not changes:
            continue
        async with write_transaction():
            for key, old, new in changes:
                done = await (
                    table.update({col: new}).where((pk == key) & (col == old)).returning(pk)
                )
                report.resealed += len(done)


async def reseal_command(settings: Settings) -> int:
    """``python -m scheduler reseal``: exit 1 if some value opens with no configured key."""
    from scheduler.db.engine import close_engine, open_engine

    await open_engine(settings)
    try:
        report = await reseal(settings)
    finally:
        await close_engine()
    print(
        f"checked {report.checked} sealed values; re-sealed {report.resealed} with the current"
        f" key; {report.unopenable} open with no configured key"
    )
    return 1 if report.unopenable else 0
