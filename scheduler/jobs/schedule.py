"""The fixed APScheduler jobs. APScheduler holds no durable state: every job is
registered at start with an explicit id, reads its work from the database, and
is safe to run in several processes at once (claims are atomic)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.kernel.clock import utcnow
from scheduler.notify import delivery, scrub
from scheduler.notify.outbox import LEASE_GRACE_SECONDS, Dispatcher, sender_id
from scheduler.notify.sms import SmsBackend
from scheduler.observability.metrics import job_run
from scheduler.settings import Settings
from scheduler.usecases.booking import idempotency, reminders
from scheduler.usecases.booking import lifecycle as booking
from scheduler.usecases.calendar import slots
from scheduler.usecases.desk import no_show
from scheduler.usecases.lottery import draw as lottery
from scheduler.usecases.offices import reschedule
from scheduler.usecases.policy import policies
from scheduler.usecases.policy.ratelimits import purge as purge_rate_counters
from scheduler.usecases.privacy import retention
from scheduler.usecases.staff import accounts as staff
from scheduler.usecases.waitlist.offers import run as waitlist_offers

log = logging.getLogger("scheduler.jobs")


def _logged(name: str, fn: Callable[[datetime], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            with job_run(name):
                result = await fn(utcnow())
        except Exception:
            # A failing run must not kill the schedule; the next run retries from the database.
            log.exception("job %s failed", name)
        else:
            if result:
                log.info("job %s: %s", name, result)

    return run


DISPATCH_EVERY_SECONDS = 2


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def make_dispatcher(
    settings: Settings, sms: SmsBackend, owner: str | None = None, **options: Any
) -> Dispatcher:
    """The outbox dispatcher, told the SMS terms (pace, quiet hours) by the policy
    store at each run: notify never reads the policies itself."""
    return Dispatcher(
        sms,
        owner or worker_id(),
        settings,
        sender_id(settings),
        partial(policies.sms_terms, settings),
        **({"lease_grace_seconds": settings.sms_lease_grace_seconds} | options),
    )


async def dispatch_due(
    backend: SmsBackend,
    owner: str,
    now: datetime,
    *,
    settings: Settings,
    window_seconds: float = 2.0,
) -> int:
    """One dispatcher step with a fresh Dispatcher (the CLI, tests and benchmarks)."""
    dispatcher = make_dispatcher(settings, backend, owner, lease_grace_seconds=LEASE_GRACE_SECONDS)
    return await dispatcher.run_once(now, window_seconds=window_seconds)


def build_scheduler(
    settings: Settings, sms: SmsBackend, dispatcher: Dispatcher | None = None
) -> AsyncIOScheduler:
    dispatcher = dispatcher or make_dispatcher(settings, sms)

    async def dispatch(now: datetime) -> int:
        return await dispatcher.run_once(now, window_seconds=DISPATCH_EVERY_SECONDS)

    async def remind(now: datetime) -> int:
        return await reminders.queue_reminders(now, settings)

    async def reschedule_runs(now: datetime) -> int:
        runs = await reschedule.due_runs(now)
        for run_id in runs:
            await reschedule.execute(run_id, worker_id(), now, settings=settings)
        return len(runs)

    async def purge(now: datetime) -> None:
        await idempotency.purge(now, settings.idempotency_ttl_hours)
        await delivery.purge_events(now)  # issue 13.13: callbacks that never matched
        await staff.purge_login_failures(now)  # failed sign-ins a day old

    scheduler = AsyncIOScheduler(timezone=settings.default_timezone)
    common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "replace_existing": True}
    scheduler.add_job(
        _logged("generate_slots", slots.generate_slots),
        CronTrigger(hour=settings.slot_generation_hour, minute=0),
        id="generate_slots",
        **common,
    )
    scheduler.add_job(
        _logged("expire_holds", partial(booking.expire_holds, settings=settings)),
        IntervalTrigger(seconds=15),
        id="expire_holds",
        **common,
    )
    scheduler.add_job(  # issue 13.13: codes masked in the outbox once sent or stale
        _logged("scrub_codes", scrub.scrub_codes),
        IntervalTrigger(seconds=15),
        id="scrub_codes",
        **common,
    )
    scheduler.add_job(
        _logged("dispatch_outbox", dispatch),
        IntervalTrigger(seconds=DISPATCH_EVERY_SECONDS),
        id="dispatch_outbox",
        # A run ends a moment after its window (the last send's answer and record):
        # with one instance the next tick would be skipped, halving the paced rate.
        # Two overlap safely: claims are atomic, a process never re-claims rows it is
        # still sending, and send times come from the shared pace.
        **(common | {"max_instances": 2}),
        # A (re)started worker sends at once rather than one interval later.
        next_run_time=utcnow(),
    )
    scheduler.add_job(
        _logged("reschedule_runs", reschedule_runs),
        IntervalTrigger(seconds=2),
        id="reschedule_runs",
        **common,
    )
    scheduler.add_job(
        _logged("queue_reminders", remind),
        IntervalTrigger(minutes=5),
        id="queue_reminders",
        **common,
    )
    scheduler.add_job(
        _logged("purge_idempotency", purge),
        IntervalTrigger(hours=1),
        id="purge_idempotency",
        **common,
    )
    scheduler.add_job(  # issue 7.3: safety net for seats freed without a hook (capacity raised...)
        _logged("waitlist_offers", partial(waitlist_offers, settings=settings)),
        IntervalTrigger(seconds=20),
        id="waitlist_offers",
        **common,
    )
    scheduler.add_job(  # issue 7.4: shared rate-limit counters whose window has ended
        _logged("purge_rate_counters", purge_rate_counters),
        IntervalTrigger(hours=1),
        id="purge_rate_counters",
        **common,
    )
    # issue 6.6: personal data past RETENTION_DAYS, see scheduler/usecases/privacy/retention.py
    scheduler.add_job(
        _logged("erase_personal_data", partial(retention.erase_expired, settings=settings)),
        IntervalTrigger(hours=1),
        id="erase_personal_data",
        **common,
    )
    scheduler.add_job(  # issue 4.8: late confirmed appointments -> no_show, then bans
        _logged("no_shows", partial(no_show.run, settings=settings)),
        IntervalTrigger(minutes=1),
        id="no_shows",
        **common,
    )
    scheduler.add_job(  # issue 7: draw closed lotteries, pass lapsed winners' seats on
        _logged("lotteries", partial(lottery.tick, settings=settings)),
        IntervalTrigger(seconds=30),
        id="lotteries",
        **common,
    )
    return scheduler
