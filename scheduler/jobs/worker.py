"""``python -m scheduler worker``: the jobs without the web server.

Several workers (and web processes with jobs on) may run at once: every job
claims its work atomically. On SIGTERM the worker stops its jobs and hands its
unsent outbox leases back, so another worker sends them at once instead of
waiting for the leases to lapse.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from scheduler.db.engine import close_engine, open_engine
from scheduler.db.tables import OutboxMessage
from scheduler.jobs.schedule import build_scheduler, make_dispatcher, worker_id
from scheduler.kernel.clock import utcnow
from scheduler.notify.sms import backend_for
from scheduler.settings import Settings
from scheduler.usecases.calendar import slots

log = logging.getLogger("scheduler.worker")
# Sends on the wire when asked to stop finish within the Twilio client's timeout.
STOP_WAIT_SECONDS = 15.0


async def release_leases(owner: str, keep: set[int] | None = None) -> None:
    """Hand back this worker's claimed rows that it never tried to send (``keep``:
    rows whose send may still be on the wire; their leases lapse instead)."""
    where = (OutboxMessage.lease_owner == owner) & (OutboxMessage.status == "sending")
    if keep:
        where &= OutboxMessage.id.not_in(list(keep))
    await OutboxMessage.update(
        {
            OutboxMessage.status: "pending",
            OutboxMessage.lease_owner: None,
            OutboxMessage.lease_expires_at: None,
            OutboxMessage.attempts: OutboxMessage.attempts - 1,
        }
    ).where(where)


@asynccontextmanager
async def running_jobs(settings: Settings) -> AsyncIterator[None]:
    """The fixed jobs, started; on exit the outbox is drained before anything stops.

    Used by the worker and by web processes with jobs on, so that SIGTERM to
    either hands unsent leases back instead of leaving them to lapse.
    """
    sms = backend_for(settings)
    dispatcher = make_dispatcher(settings, sms)
    jobs = build_scheduler(settings, sms, dispatcher)
    try:
        await slots.generate_slots(utcnow())
        jobs.start()
        yield
    finally:
        # Sends first: shutting the scheduler down cancels a running dispatch mid-send.
        on_the_wire = await dispatcher.stop(STOP_WAIT_SECONDS)
        if jobs.running:
            jobs.shutdown(wait=False)
        await release_leases(worker_id(), on_the_wire)
        await sms.close()


async def run_worker(settings: Settings) -> None:
    await open_engine(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_jobs(settings):
            log.info("worker %s started", worker_id())
            await stop.wait()
    finally:
        await close_engine()
        log.info("worker %s stopped", worker_id())
