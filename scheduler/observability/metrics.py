"""Prometheus metrics.

Two kinds, on purpose:
- counters and histograms of what *this process* did (HTTP requests, booking
  outcomes, job runs) kept by prometheus_client; with several processes per port
  set PROMETHEUS_MULTIPROC_DIR so every worker's values are summed at scrape;
- gauges of *shared state* (outbox depth and age, SMS results by error code) read
  from the database at scrape time, so every process reports the same truth and
  nothing is lost when a process restarts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from scheduler.kernel.errors import DomainError

BOOKING_OUTCOMES = Counter(
    "registry_booking_outcomes_total",
    "Booking attempts by outcome: held, or the problem slug that refused them.",
    ["outcome"],
)
JOB_RUNS = Counter(
    "registry_job_runs_total", "Scheduled job runs by job and result.", ["job", "result"]
)
JOB_SECONDS = Histogram(
    "registry_job_duration_seconds",
    "Duration of scheduled job runs.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


@contextmanager
def booking_outcome() -> Iterator[None]:
    """Count one booking attempt: ``held`` when the block returns, else the slug."""
    try:
        yield
    except DomainError as exc:
        BOOKING_OUTCOMES.labels(exc.slug).inc()
        raise
    BOOKING_OUTCOMES.labels("held").inc()


@contextmanager
def job_run(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except Exception:
        JOB_RUNS.labels(name, "failed").inc()
        raise
    else:
        JOB_RUNS.labels(name, "ok").inc()
    finally:
        JOB_SECONDS.labels(name).observe(time.perf_counter() - started)


@dataclass(frozen=True)
class OutboxStats:
    """Shared state read from the database for one scrape."""

    depth_by_status: dict[str, int] = field(default_factory=dict)
    oldest_pending_at: datetime | None = None
    results: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, code) -> n


class _SharedState(Collector):
    def __init__(self, stats: OutboxStats, now: datetime) -> None:
        self.stats, self.now = stats, now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "registry_outbox_messages", "Outbox rows by status.", labels=["status"]
        )
        for status, count in sorted(self.stats.depth_by_status.items()):
            depth.add_metric([status], count)
        yield depth
        age = GaugeMetricFamily(
            "registry_outbox_oldest_pending_age_seconds",
            "Age of the oldest due, unsent outbox row (0 when none).",
        )
        oldest = self.stats.oldest_pending_at
        age.add_metric([], max(0.0, (self.now - oldest).total_seconds()) if oldest else 0.0)
        yield age
        results = GaugeMetricFamily(
            "registry_sms_results",
            "SMS by final or current status and Twilio error code (24 hours).",
            labels=["status", "error_code"],
        )
        for (status, code), count in sorted(self.stats.results.items()):
            results.add_metric([status, code], count)
        yield results


def exposition(stats: OutboxStats, now: datetime) -> bytes:
    shared = CollectorRegistry()
    shared.register(_SharedState(stats, now))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        local = CollectorRegistry()
        MultiProcessCollector(local)
    else:
        local = REGISTRY
    return generate_latest(local) + generate_latest(shared)
