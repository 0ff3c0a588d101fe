"""Retention of the waiting list's personal data (see scheduler/usecases/privacy/retention.py).

Entries are not appointments, so the retention job calls ``erase_waitlist`` on
its schedule: the partners' names, phones and ID numbers (sealed, masked, hashed)
of entries whose date is past ``RETENTION_DAYS`` in their office's time zone are
emptied; the entry itself (date, offices, status, times) stays for statistics.
The partners are ``party`` rows: ``python -m scheduler reseal`` re-seals them with
the bookings' (scheduler/usecases/privacy/personal_data.py).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler.db.engine import write_transaction
from scheduler.db.tables import Office, Party
from scheduler.db.waitlist_tables import WaitlistClaim, WaitlistEntry
from scheduler.domain.retention import first_kept_day
from scheduler.settings import Settings
from scheduler.usecases.privacy.retention import erase_on_schedule, erase_parties

BATCH = 500


@erase_on_schedule("waitlist")
async def erase_waitlist(now: datetime, settings: Settings) -> int:
    """Empty the personal data of entries past retention; idempotent, batched."""
    erased = 0
    for office in await Office.select(Office.id, Office.timezone).order_by(Office.id):
        cutoff = first_kept_day(now, ZoneInfo(office["timezone"]), settings.retention_days)
        while True:
            entries = [
                e["id"]
                for e in await WaitlistEntry.select(WaitlistEntry.id)
                .where((WaitlistEntry.office == office["id"]) & (WaitlistEntry.day < cutoff))
                .order_by(WaitlistEntry.id)
            ]
            if not entries:
                break
            parties = await (
                Party.select(Party.id)
                .where(Party.entry.is_in(entries) & (Party.phone != ""))
                .limit(BATCH)
            )
            if not parties:
                break
            async with write_transaction():
                await erase_parties(Party.id.is_in([p["id"] for p in parties]), code_hashes=True)
                await WaitlistClaim.delete().where(WaitlistClaim.entry.is_in(entries))
            erased += len(parties)
    return erased
