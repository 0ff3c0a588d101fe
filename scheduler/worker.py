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

from scheduler import slots
from scheduler.clock import utcnow
from scheduler.db.engine import close_engine, open_engine
from scheduler.db.tables import OutboxMessage
from scheduler.jobs import build_scheduler, worker_id
from scheduler.notify.sms import backend_for
from scheduler.settings import Settings

log = logging.getLogger("scheduler.worker")


async def release_leases(owner: str) -> None:
    await OutboxMessage.update(
        {
            OutboxMessage.status: "pending",
            OutboxMessage.lease_owner: None,
            OutboxMessage.lease_expires_at: None,
        }
    ).where((OutboxMessage.lease_owner == owner) & (OutboxMessage.status == "sending"))


async def run_worker(settings: Settings) -> None:
    await open_engine(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sms = backend_for(settings)
    jobs = build_scheduler(settings, sms)
    try:
        await slots.generate_slots(utcnow())
        jobs.start()
        log.info("worker %s started", worker_id())
        await stop.wait()
    finally:
        if jobs.running:
            jobs.shutdown(wait=False)
        await release_leases(worker_id())
        await sms.close()
        await close_engine()
        log.info("worker %s stopped", worker_id())
