"""What a running server prints: personal data masked, no manage token, a request id
on every line of a request, in plain text and in JSON (``LOG_FORMAT=json``). The
server runs as in production (``python -m scheduler serve``): the finding was that
Litestar replaced the masking formatter when the app was built."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.helpers import booking_body, make_office, person
from tests.servers import running_server

ID_NUMBER = "11010519491231002X"
PHONE = "+8613800138000"


async def _traffic(base: str) -> tuple[str, list[str]]:
    """A booking and the requests that put a token, a phone and an ID number in URLs.
    Returns the manage token and the request ids the server answered with."""
    async with httpx.AsyncClient(base_url=base) as client:
        slots = (
            await client.get("/api/v1/offices/GZ-TH/availability", params={"service": "marriage"})
        ).json()
        slot = next(s for d in slots["days"] if d["status"] == "open" for s in d["slots"])
        a = person() | {"id_number": ID_NUMBER, "phone": PHONE}
        held = await client.post("/api/v1/appointments", json=booking_body(slot["id"], a=a))
        assert held.status_code == 201, held.text
        ref, token = held.json()["reference"], held.json()["manage_token"]
        responses = [
            held,
            await client.get(f"/manage/{ref}", params={"token": token}),
            await client.get(f"/api/v1/appointments/{ref}.ics", params={"token": token}),
            await client.get(f"/api/v1/offices/{ID_NUMBER}/availability?phone={PHONE}"),
            await client.get("/no/such/page"),  # answered before routing
        ]
    assert responses[2].status_code == 200, responses[2].text
    return token, [r.headers["x-request-id"] for r in responses]


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_running_server_masks_and_drops_tokens(
    db: None, tmp_path: Path, log_format: str
) -> None:
    await make_office()
    log = tmp_path / "server.log"
    env = {"LOG_FORMAT": log_format, "LOG_LEVEL": "INFO"}
    async with running_server(log, env=env, serve=True) as server:
        token, request_ids = await _traffic(server.base)
    output = log.read_text(encoding="utf-8")
    assert ID_NUMBER not in output and PHONE[1:] not in output and "13800138000" not in output
    assert token not in output
    assert "token=[redacted]" in output  # the access lines are there, without the value
    access = [line for line in output.splitlines() if "uvicorn.access" in line]
    assert len(access) >= 5, output
    for request_id in request_ids:
        lines = [line for line in access if request_id in line]
        assert len(lines) == 1, (request_id, output)
    if log_format == "json":
        entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert entries and len(entries) == len(output.splitlines()), output
        assert all(e["request_id"] != "-" for e in entries if e["logger"] == "uvicorn.access")
    else:
        for line in access:
            assert re.search(r" \[[0-9a-f]{16}\] ", line), line
