"""Property-based contract test of the public API with Schemathesis.

The app runs as a real uvicorn server on loopback, in its own process, against
this test's database (schemathesis calls the API synchronously, and a second
app instance in this process would share Piccolo's engine and its pool, which
belongs to this test's event loop). An office is seeded first, and part of the
generated requests use its real code, slots and booking reference, so that the
operations get past the 404s and reach their real responses.

Each public operation gets schema-valid requests (generated, and with the
seeded real values) and schema-invalid ones (Schemathesis' negative mode). Every
response is checked for: no 5xx, a documented status code, the documented
content type, and a body conforming to the documented schema. The run is
deterministic (derandomized) and bounded to MAX_EXAMPLES per strategy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import booking_body, make_office, open_slots

MAX_EXAMPLES = 25
# The couples' API of API.md; staff and admin endpoints need their own auth setup.
PUBLIC_OPERATIONS = {
    "GET /api/v1/offices",
    "GET /api/v1/offices/{office}/availability",
    "POST /api/v1/appointments",
    "GET /api/v1/appointments/{reference}",
    "POST /api/v1/appointments/{reference}/confirm",
    "POST /api/v1/appointments/{reference}/cancel",
    "POST /api/v1/appointments/{reference}/move",
    "GET /api/v1/appointments/{reference}/precheck",
    "PUT /api/v1/appointments/{reference}/precheck",
    # The couple's own access (issue 14).
    "POST /api/v1/appointments/{reference}/codes/resend",
    "POST /api/v1/appointments/{reference}/codes/resend-to-phone",
    "POST /api/v1/appointments/{reference}/confirm-by-phone",
    "POST /api/v1/appointments/{reference}/recovery",
    "POST /api/v1/appointments/{reference}/recovery/confirm",
}


def _fuzz(strategy: Any, base_url: str, checks: list[Any], statuses: set[int]) -> None:
    """Run one operation's examples; records the status codes seen."""
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, checks=checks)
        statuses.add(response.status_code)

    run()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_env() -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "JOBS_ENABLED": "false",
        "RATE_LIMIT_SMS_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "10",
    }


@pytest.fixture
def live_server(db: None, server_env: dict[str, str], tmp_path: Any) -> Iterator[str]:
    """``python -m uvicorn scheduler.asgi:app`` on a free loopback port."""
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "scheduler.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base}/schema/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> AsyncIterator[dict[str, Any]]:
    """An office with slots and one booking (its reference and manage token)."""
    await make_office(services=("marriage", "divorce"))
    slots = await open_slots(client)
    resp = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"]))
    assert resp.status_code == 201, resp.text
    held = resp.json()
    yield held | {"office": "GZ-TH", "slot_ids": [s["id"] for s in slots[:5]]}


async def test_public_api_conforms_to_its_openapi_document(
    seeded: dict[str, Any], live_server: str
) -> None:
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{live_server}/schema/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    ref, token = seeded["reference"], seeded["manage_token"]
    real: dict[str, dict[str, Any]] = {
        "office": {"path_parameters": {"office": seeded["office"]}},
        "reference": {"path_parameters": {"reference": ref}, "headers": {"X-Manage-Token": token}},
    }

    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    assert operations.keys() >= PUBLIC_OPERATIONS
    seen: dict[str, set[int]] = {}
    failures: list[str] = []
    for label in sorted(PUBLIC_OPERATIONS):
        op = operations[label]
        strategies = {
            "generated": op.as_strategy(),
            "invalid": op.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
        }
        for name, fixed in real.items():
            if "{" + name + "}" in op.path:
                strategies[name] = op.as_strategy(**fixed)
        if label == "GET /api/v1/offices/{office}/availability":
            strategies["service"] = op.as_strategy(**real["office"], query={"service": "marriage"})
        if label == "POST /api/v1/appointments":
            strategies["body"] = op.as_strategy(body=booking_body(seeded["slot_ids"][1]))
        seen[label] = set()
        for kind, strategy in strategies.items():
            try:
                _fuzz(strategy, live_server, checks, seen[label])
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (no body, free-form strings).
                assert kind == "invalid", label
            except Exception as exc:  # collected: one broken case must not hide the others
                failures.append(f"{label} ({kind}): {exc}")
    assert not failures, "\n\n".join(failures)
    # The seeded requests got past "not found" into the real answers.
    assert 200 in seen["GET /api/v1/offices/{office}/availability"], seen
    assert 200 in seen["GET /api/v1/appointments/{reference}"], seen
    assert 201 in seen["POST /api/v1/appointments"], seen


async def test_documented_errors_are_problem_details(client: httpx.AsyncClient) -> None:
    """Every documented error of the public API is the problem+json the app sends
    (Litestar's default 400 entry describes a different JSON body), and the
    endpoints behind the SMS rate limit document their 429."""
    document = (await client.get("/schema/openapi.json")).json()
    for label in PUBLIC_OPERATIONS:
        method, path = label.split(" ", 1)
        responses = document["paths"][path][method.lower()]["responses"]
        for status, response in responses.items():
            if int(status) >= 400:
                assert set(response.get("content", {})) == {"application/problem+json"}, (
                    label,
                    status,
                )
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (label, status)
    for label in ("POST /api/v1/appointments", "POST /api/v1/appointments/{reference}/move"):
        method, path = label.split(" ", 1)
        assert "429" in document["paths"][path][method.lower()]["responses"], label


async def test_move_is_rate_limited_as_documented(db: None) -> None:
    """Moving texts both parties, so it shares the booking's SMS rate limit."""
    from dataclasses import replace

    from scheduler.app import create_app
    from scheduler.settings import get_settings

    await make_office()
    app = create_app(replace(get_settings(), rate_limit_sms_per_minute=1))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        first, second = (await open_slots(c))[:2]
        held = await c.post("/api/v1/appointments", json=booking_body(first["id"]))
        assert held.status_code == 201, held.text
        resp = await c.post(
            f"/api/v1/appointments/{held.json()['reference']}/move",
            json={"slot_id": second["id"]},
            headers={"X-Manage-Token": held.json()["manage_token"]},
        )
    assert resp.status_code == 429
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["type"].endswith("/rate-limited")
