"""Secrets at rest (issue 13.13): what a copy of the database would give away.

* The idempotency record keeps the response for retries, but the manage token in
  it only sealed: no row holds it in plaintext, and a retry still gets it back.
* SMS codes are masked in the outbox once the text is sent (a real worker process
  sends and scrubs them), and the masked text is never resent.
* Twilio's status callbacks leave no rows once applied, replays included; those that
  never match a message are purged after a day.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scheduler.db.tables import DeliveryEvent, IdempotencyRecord, OutboxMessage
from scheduler.settings import get_settings
from scheduler.usecases.policy import policies
from tests.helpers import booking_body, make_office, open_slots, sms_codes

ROOT = Path(__file__).resolve().parents[1]


async def test_the_idempotency_record_holds_no_plaintext_token(client: httpx.AsyncClient) -> None:
    await make_office()
    slot = (await open_slots(client))[0]
    body = booking_body(slot["id"])
    headers = {"Idempotency-Key": "secret-at-rest-0001"}
    first = await client.post("/api/v1/appointments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    token = first.json()["manage_token"]
    rows = await IdempotencyRecord.select()
    assert len(rows) == 1
    assert token not in str(rows[0])  # not in the body, nor anywhere else in the row
    # A retry gets the same answer, token included, and the token works.
    again = await client.post("/api/v1/appointments", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["manage_token"] == token
    view = await client.get(
        f"/api/v1/appointments/{first.json()['reference']}", headers={"X-Manage-Token": token}
    )
    assert view.status_code == 200, view.text
    # A sealed token moved into another record does not open there.
    await IdempotencyRecord.update({IdempotencyRecord.key: "book:another-key-0002"}).where(
        IdempotencyRecord.id == rows[0]["id"]
    )
    moved = await client.post(
        "/api/v1/appointments", json=body, headers={"Idempotency-Key": "another-key-0002"}
    )
    assert moved.status_code != 201 or moved.json().get("manage_token") != token


async def _until(check: object, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.5)
    raise AssertionError("condition not met in time")


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m scheduler worker``: the jobs as deployed (dispatch, scrub, ...)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scheduler", "worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def test_a_worker_masks_codes_once_sent_and_they_still_confirm(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await make_office()
    slot = (await open_slots(client))[0]
    held = (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).json()
    sent = await sms_codes(held["reference"])
    env = os.environ | {
        "APP_ENV": "test",
        "SMS_BACKEND": "console",
        "SMS_QUIET_HOURS": "off",
        "LOG_LEVEL": "INFO",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
    }
    worker = _start_worker(env, tmp_path / "worker.log")
    try:

        async def masked() -> bool:
            rows = await OutboxMessage.select().where(OutboxMessage.template == "code")
            return len(rows) == 2 and all(
                r["status"] != "pending" and sent[r["key"][-1]] not in r["body"] for r in rows
            )

        await _until(masked, 45)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    rows = (
        await OutboxMessage.select().where(OutboxMessage.template == "code").output(load_json=True)
    )
    for row in rows:
        code = sent[row["key"][-1]]
        assert code not in row["body"] and code not in str(row["payload"]), row
        assert "******" in row["body"] and row["payload"]["code"] == "******"
    # The codes the phones received still confirm: only their hashes were ever needed.
    for role in ("a", "b"):
        resp = await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": sent[role]},
        )
        assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "confirmed"


async def test_unsent_codes_stay_until_stale_and_masked_ones_are_not_resent(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.notify.scrub import scrub_codes

    await make_office()
    slot = (await open_slots(client))[0]
    held = (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).json()
    sent = await sms_codes(held["reference"])
    now = datetime.now(UTC)
    assert await scrub_codes(now) == 0  # still to be sent: the dispatcher needs them
    assert await scrub_codes(now + timedelta(hours=11)) == 2  # never sent, long stale
    assert set(await sms_codes(held["reference"])) == {"a", "b"}
    assert "******" in set((await sms_codes(held["reference"])).values())
    assert not set(sent.values()) & set((await sms_codes(held["reference"])).values())
    # A clerk cannot resend a masked code text (it would read "******").
    from scheduler.usecases.staff import accounts as staff
    from tests.test_sms_failures_page import PASSWORD, fail, post_form, sign_in

    row = await OutboxMessage.select().where(OutboxMessage.template == "code").first()
    assert row is not None
    await fail(row["id"])
    await staff.create_staff(
        username="tianhe", password=PASSWORD, role="clerk", office_codes=["GZ-TH"], now=now
    )
    await sign_in(client, "tianhe")
    resp = await post_form(client, f"/staff/sms/{row['id']}/resend", {"attempt": "1"})
    assert resp.status_code == 409, resp.text
    assert await OutboxMessage.count() == 2


@pytest.mark.usefixtures("db")
async def test_applied_and_replayed_callbacks_leave_no_rows() -> None:
    from scheduler.db.engine import write_transaction
    from scheduler.notify import delivery, outbox

    now = datetime.now(UTC)
    settings = get_settings()
    terms = await policies.sms_terms(settings)
    async with write_transaction():
        await outbox.enqueue(
            key="m:1",
            to_phone="+8613800138000",
            template="expired",
            locale="en",
            payload={"reference": "GZTH-AAAA-BBBB"},
            now=now,
            urgent=True,
            terms=terms,
        )
    await OutboxMessage.update(
        {OutboxMessage.status: "sent", OutboxMessage.provider_sid: "SM1"}
    ).where(OutboxMessage.key == "m:1")
    for status in ("sent", "delivered", "delivered", "sent"):  # Twilio repeats itself
        assert await delivery.record_callback("SM1", status, None, now, settings, terms)
    assert await DeliveryEvent.count() == 0
    assert (await OutboxMessage.select().first())["status"] == "delivered"  # type: ignore[index]
    # A callback for a SID we never sent waits for it a day, then goes.
    assert not await delivery.record_callback("SM-unknown", "delivered", None, now, settings, terms)
    assert await DeliveryEvent.count() == 1
    assert await delivery.purge_events(now + timedelta(hours=23)) == 0
    assert await delivery.purge_events(now + timedelta(hours=25)) == 1
    assert await DeliveryEvent.count() == 0


async def test_the_manage_code_in_a_sent_confirmation_text_is_masked(
    client: httpx.AsyncClient,
) -> None:
    from scheduler.notify.scrub import scrub_codes

    await make_office()
    slot = (await open_slots(client))[0]
    held = (await client.post("/api/v1/appointments", json=booking_body(slot["id"]))).json()
    token = held["manage_token"]
    for role, code in (await sms_codes(held["reference"])).items():
        resp = await client.post(
            f"/api/v1/appointments/{held['reference']}/confirm",
            json={"party": role, "code": code},
        )
        assert resp.status_code == 200, resp.text
    texts = await OutboxMessage.select().where(OutboxMessage.template == "confirmed")
    assert texts and all(token in t["body"] for t in texts)  # +86: the code, no link
    await OutboxMessage.update({OutboxMessage.status: "sent"}).where(OutboxMessage.id > 0)
    assert await scrub_codes(datetime.now(UTC)) == 4  # two codes, two confirmations
    rows = await OutboxMessage.select()
    assert not [r for r in rows if token in r["body"] or token in str(r["payload"])]
    assert await scrub_codes(datetime.now(UTC)) == 0  # each row once
