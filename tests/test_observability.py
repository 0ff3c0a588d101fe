"""Health probes, Prometheus metrics and structured logs, through the HTTP API."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
from piccolo.apps.migrations.tables import Migration
from prometheus_client.parser import text_string_to_metric_families

from scheduler.app import create_app
from scheduler.db.tables import OutboxMessage
from scheduler.kernel.clock import utcnow
from scheduler.observability.logs import REQUEST_ID, _Formatter, mask_text
from scheduler.settings import get_settings
from tests.helpers import booking_body, make_office, open_slots


def client_for(**overrides: Any) -> httpx.AsyncClient:
    app = create_app(replace(get_settings(), **overrides))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def enqueue(n: int, status: str = "pending", minutes_ago: int = 5) -> None:
    due = utcnow() - timedelta(minutes=minutes_ago)
    for i in range(n):
        await OutboxMessage.insert(
            OutboxMessage(
                key=f"obs:{status}:{i}",
                to_phone="+8613800000000",
                template="code",
                locale="zh-Hans",
                payload={},
                status=status,
                due_at=due,
            )
        )


async def test_live_answers_without_the_database(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health/live")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


async def test_ready_checks_database_migrations_and_backlog(db: None) -> None:
    async with client_for(health_outbox_backlog_max=2) as client:
        resp = await client.get("/health/ready")
        assert resp.status_code == 200, resp.text
        assert {name: c["ok"] for name, c in resp.json()["checks"].items()} == {
            "database": True,
            "migrations": True,
            "outbox": True,
            "holidays": True,  # a missing notice warns, never fails (tests/test_holiday_notices.py)
        }
        await enqueue(3)
        resp = await client.get("/health/ready")
        assert resp.status_code == 503
        checks = resp.json()["checks"]
        assert checks["outbox"] == {"ok": False, "detail": "3 due and unsent (limit 2)"}
        assert checks["database"]["ok"] and checks["migrations"]["ok"]


async def test_ready_fails_while_a_migration_is_not_applied(client: httpx.AsyncClient) -> None:
    last = await Migration.select().order_by(Migration.id, ascending=False).first()
    assert last is not None
    await Migration.delete().where(Migration.id == last["id"])
    try:
        resp = await client.get("/health/ready")
        assert resp.status_code == 503
        migrations = resp.json()["checks"]["migrations"]
        assert migrations["ok"] is False
        assert migrations["detail"] == f"1 not applied, first {last['name']}"
    finally:
        await Migration.insert(Migration(name=last["name"], app_name=last["app_name"]))
    assert (await client.get("/health/ready")).status_code == 200


async def test_metrics_count_booking_outcomes_and_read_the_outbox(
    client: httpx.AsyncClient,
) -> None:
    await make_office(slot_cap=1)
    slot = (await open_slots(client))[0]

    def outcomes(text: str) -> dict[str, float]:
        found = samples(text, "registry_booking_outcomes_total")
        return {dict(labels)["outcome"]: value for labels, value in found.items()}

    before = outcomes((await client.get("/metrics")).text)
    assert (
        await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    ).status_code == 201
    full = await client.post("/api/v1/appointments", json=booking_body(slot["id"]))
    assert full.status_code == 409
    await enqueue(2, status="failed", minutes_ago=1)

    text = (await client.get("/metrics")).text
    after = outcomes(text)
    assert after.get("held", 0) - before.get("held", 0) == 1
    assert after.get("slot-full", 0) - before.get("slot-full", 0) == 1
    # Shared state comes from the table itself: the booking queued two SMS codes.
    depth = {dict(k)["status"]: v for k, v in samples(text, "registry_outbox_messages").items()}
    counted = await OutboxMessage.count().where(OutboxMessage.status == "pending")
    assert depth["pending"] == counted == 2
    assert depth["failed"] == 2
    assert samples(text, "registry_outbox_oldest_pending_age_seconds")[()] >= 0
    # Request metrics group paths by route: no reference or office code becomes a label.
    paths = {dict(k).get("path") for k in samples(text, "registry_requests_total")}
    assert "/api/v1/offices/{office}/availability" in paths
    assert not [p for p in paths if p and "GZ-TH" in p]


async def test_metrics_token_is_required_when_set(db: None) -> None:
    async with client_for(metrics_token="s3cret-token") as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        assert "registry_outbox_messages" in ok.text


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "lb-1234"})
    assert given.headers["x-request-id"] == "lb-1234"
    made = await client.get("/health/live", headers={"X-Request-ID": "bad id\n"})
    assert made.headers["x-request-id"] != "bad id\n"
    assert len(made.headers["x-request-id"]) == 16


def test_json_logs_mask_personal_data_and_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "scheduler.test",
        logging.INFO,
        __file__,
        1,
        "booked %s for %s",
        ("110101199003072316", "+8613812345678"),
        None,
    )
    token = REQUEST_ID.set("req-42")
    try:
        line = json.loads(_Formatter(json_lines=True).format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO" and line["logger"] == "scheduler.test"
    assert "110101199003072316" not in line["message"]
    assert "13812345678" not in line["message"]
    assert line["message"] == "booked 110*************16 for +86*********78"


def test_masking_leaves_ordinary_numbers_alone() -> None:
    assert mask_text("slot 42 of 2026-12-01, 3 SMS") == "slot 42 of 2026-12-01, 3 SMS"
    assert mask_text("passport E12345678") == "passport E123***78"
