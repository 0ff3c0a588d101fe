"""Retention of lottery applications' personal data (see scheduler/usecases/privacy/retention.py).

Applications are not appointments (a winner's appointment is erased with the
appointments), so the retention job calls ``erase_lottery`` on its schedule: the
partners' names, phones, ID numbers (sealed, masked, hashed) and code hashes of
every application to a lottery whose date is past ``RETENTION_DAYS`` (in its
offices' time zone) are emptied, and the per-ID claims deleted. The application
(reference, status, preferences) and the lottery (seed, published order) stay:
the draw remains checkable. The partners are ``party`` rows, re-sealed with the
bookings' (scheduler/usecases/privacy/personal_data.py).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler.db.engine import write_transaction
from scheduler.db.lottery_tables import (
    Lottery,
    LotteryApplication,
    LotteryClaim,
    LotteryOffice,
)
from scheduler.db.tables import Party
from scheduler.domain.retention import first_kept_day
from scheduler.settings import Settings
from scheduler.usecases.privacy.retention import erase_on_schedule, erase_parties

BATCH = 500


@erase_on_schedule("lottery")
async def erase_lottery(now: datetime, settings: Settings) -> int:
    """Empty the personal data of applications past retention; idempotent, batched."""
    erased = 0
    for row in await Lottery.select(Lottery.id, Lottery.day).order_by(Lottery.id):
        office = await (
            LotteryOffice.select(LotteryOffice.office.timezone)
            .where(LotteryOffice.lottery == row["id"])
            .first()
        )
        tz = ZoneInfo(office["office.timezone"] if office else settings.default_timezone)
        if row["day"] >= first_kept_day(now, tz, settings.retention_days):
            continue
        while True:
            parties = await (
                Party.select(Party.id, Party.application)
                .where((Party.application.lottery == row["id"]) & (Party.phone != ""))
                .limit(BATCH)
            )
            if not parties:
                break
            apps = sorted({p["application"] for p in parties})
            async with write_transaction():
                await erase_parties(Party.id.is_in([p["id"] for p in parties]), code_hashes=True)
                await LotteryClaim.delete().where(LotteryClaim.application.is_in(apps))
                await LotteryApplication.update({LotteryApplication.hold_expires_at: None}).where(
                    LotteryApplication.id.is_in(apps)
                )
            erased += len(parties)
    return erased
