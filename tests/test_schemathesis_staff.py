"""Property-based contract test of the staff and admin API, signed in.

The same set-up as tests/test_schemathesis.py (a real uvicorn server on this test's
database, derandomized, bounded), but every request carries a superadmin's bearer
token, so the fuzzer gets past 401 into the real answers of every staff and admin
operation. The abuse limits are off for the run (conftest.py sets them to 0), the
sign-out operation is left out (it would end the run's own session).

Every answer is checked for: no 5xx, a documented status code and content type,
and a body that conforms to its documented schema. MAX_EXAMPLES per strategy is
enough to reach the integer overflow class (ids beyond 2^31 / 2^63 in paths and
bodies); the whole run stays within a few minutes per database.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from scheduler.domain.policy import NAMES as POLICY_NAMES
from tests.helpers import booking_body, make_office, open_slots, staff_token
from tests.test_schemathesis import live_server, server_env  # noqa: F401 - fixtures

MAX_EXAMPLES = 30
BUDGET_SECONDS = 360  # per database, a guard against runaway growth: measured 90-170 s
# Signed in as staff: everything that is not the couples' public API.
STAFF_PREFIXES = ("/api/v1/admin/", "/api/v1/staff/", "/api/v1/offices/{office}/")
PUBLIC_UNDER_OFFICES = {"/api/v1/offices/{office}/availability"}
LEFT_OUT = {"POST /api/v1/staff/logout", "POST /api/v1/staff/login"}


def _is_staff(label: str) -> bool:
    path = label.split(" ", 1)[1]
    return (
        path.startswith(STAFF_PREFIXES)
        and path not in PUBLIC_UNDER_OFFICES
        and label not in LEFT_OUT
    )


def _fuzz(strategy: Any, base_url: str, auth: dict[str, str], checks: list[Any]) -> set[int]:
    from hypothesis import HealthCheck, given, settings

    statuses: set[int] = set()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, headers=auth, checks=checks)
        statuses.add(response.status_code)

    run()
    return statuses


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> AsyncIterator[dict[str, Any]]:
    """An office with slots and one booking; a superadmin's bearer token."""
    await make_office(services=("marriage", "divorce"))
    slots = await open_slots(client)
    resp = await client.post("/api/v1/appointments", json=booking_body(slots[0]["id"]))
    assert resp.status_code == 201, resp.text
    auth = await staff_token(client, "fuzz.root", "superadmin", ())
    yield {"reference": resp.json()["reference"], "auth": auth}


async def test_staff_api_conforms_to_its_openapi_document_signed_in(
    seeded: dict[str, Any],
    live_server: str,  # noqa: F811 - the fixture
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
    real = {
        "office": "GZ-TH",
        "code": "GZ-TH",
        "service": "marriage",
        "reference": seeded["reference"],
    }
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    labels = sorted(label for label in operations if _is_staff(label))
    assert len(labels) >= 30, labels
    started = time.monotonic()
    seen: dict[str, set[int]] = {}
    failures: list[str] = []
    for label in labels:
        op = operations[label]
        strategies = {
            "generated": op.as_strategy(),
            "invalid": op.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
        }
        fixed = {k: v for k, v in real.items() if "{" + k + "}" in op.path}
        if fixed:
            strategies["real"] = op.as_strategy(path_parameters=fixed)
        if "{name}" in op.path:
            strategies["policy"] = op.as_strategy(path_parameters={"name": POLICY_NAMES[0]})
        seen[label] = set()
        for kind, strategy in strategies.items():
            try:
                seen[label] |= _fuzz(strategy, live_server, seeded["auth"], checks)
            except Unsatisfiable:
                assert kind == "invalid", label
            except Exception as exc:  # collected: one broken case must not hide the others
                failures.append(f"{label} ({kind}): {exc}")
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    # Signed in: the fuzzer reached real answers, not only 401s.
    assert not any(seen[label] == {401} for label in labels), seen
    assert 200 in seen["GET /api/v1/offices/{office}/appointments"], seen
    assert elapsed < BUDGET_SECONDS, elapsed


def _untyped(schema: dict[str, Any]) -> bool:
    """An object the document says nothing about (Litestar's ``dict[str, Any]``)."""
    if schema.get("type") == "array":
        return _untyped(schema.get("items", {}))
    return (
        schema.get("type") == "object" and not schema.get("properties") and ("$ref" not in schema)
    )


async def test_admin_and_desk_answers_are_typed_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    untyped = []
    for path, operations in document["paths"].items():
        desk = path.startswith("/api/v1/offices/{office}/") and path not in PUBLIC_UNDER_OFFICES
        if not (path.startswith("/api/v1/admin/") or desk):
            continue
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                for content in response.get("content", {}).values():
                    if _untyped(content.get("schema", {})):
                        untyped.append(f"{method.upper()} {path} {status}")
    assert not untyped, untyped
    declared = document["paths"]["/api/v1/admin/blackouts"]["post"]["responses"]
    assert set(declared) >= {"200", "202"}
