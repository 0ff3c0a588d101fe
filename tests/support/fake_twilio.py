"""A small fake of Twilio's Messages API, served by aiohttp in its own process on loopback.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form body, basic auth)
answers as Twilio does: 201 with a message resource (``SM`` + 32 hex, ``queued``),
or Twilio's error JSON. The outcome is chosen by the ``To`` number (constants
below; Twilio's own magic test numbers where one exists) or, for the next N
requests, through ``POST /_fake/mode``. Every request is recorded; the handle
counts accepted sends per (to, body) so tests can see duplicates. After
accepting a message the fake can post status callbacks to its ``StatusCallback``
URL, signed with the auth token exactly as Twilio signs them.

Run it with ``python -m tests.support.fake_twilio``; tests use :class:`FakeTwilio`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiohttp import ClientSession, web
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[2]  # the repository (tests/support/ is two levels down)
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2

# Recipients that choose the outcome.
TO_INVALID = "+15005550001"  # 400, 21211 (Twilio's magic "invalid number")
TO_OPTED_OUT = "+15005550004"  # 400, 21610 (Twilio's magic "blocked / unsubscribed")
TO_NOT_MOBILE = "+15005550009"  # 400, 21614 (Twilio's magic "not SMS-capable")
TO_RATE_LIMITED = "+15005550429"  # 429, 20429
TO_SERVER_ERROR = "+15005550500"  # 500
TO_SLOW = "+15005550777"  # 201, but only after ``slow_seconds``

ERRORS: dict[str, tuple[int, int, str]] = {
    "invalid": (400, 21211, "The 'To' number is not a valid phone number."),
    "opted_out": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "not_mobile": (400, 21614, "'To' number is not a valid mobile number"),
    "rate_limited": (429, 20429, "Too Many Requests"),
    "server_error": (500, 20500, "Internal Server Error"),
    "unauthorized": (401, 20003, "Authenticate"),
}
MODE_BY_TO = {
    TO_INVALID: "invalid",
    TO_OPTED_OUT: "opted_out",
    TO_NOT_MOBILE: "not_mobile",
    TO_RATE_LIMITED: "rate_limited",
    TO_SERVER_ERROR: "server_error",
    TO_SLOW: "slow",
}
MESSAGES_PATH = "/2010-04-01/Accounts/{account}/Messages.json"


# ---------------------------------------------------------------- the server


@dataclass
class FakeState:
    account_sid: str
    auth_token: str
    slow_seconds: float = 3.0
    # Statuses posted to StatusCallback after a message is accepted, in order.
    callbacks: list[str] = field(default_factory=list)
    callback_error_code: str | None = None
    # Deliver callbacks here instead of to StatusCallback's host (a reverse proxy in
    # front of the service): Twilio still signs the StatusCallback URL itself.
    callback_target: str | None = None
    forced: list[str] = field(default_factory=list)  # outcomes of the next requests
    requests: list[dict[str, Any]] = field(default_factory=list)
    callback_log: list[dict[str, Any]] = field(default_factory=list)

    def outcome(self, to: str) -> str:
        return self.forced.pop(0) if self.forced else MODE_BY_TO.get(to, "ok")


STATE = web.AppKey("state", FakeState)
TASKS = web.AppKey("tasks", set)


def status_params(
    sid: str, status: str, *, to: str, sender: str, error_code: str | None = None
) -> dict[str, str]:
    """The form fields of a Twilio message status callback."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": sender,
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": to,
    }
    if error_code:
        params["ErrorCode"] = error_code
    return params


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """``X-Twilio-Signature`` for a POST of ``params`` to ``url`` (Twilio's own algorithm)."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


def _message_json(state: FakeState, sid: str, form: dict[str, str]) -> dict[str, Any]:
    now = formatdate(usegmt=True).replace("GMT", "+0000")
    service = form.get("MessagingServiceSid")
    uri = MESSAGES_PATH.format(account=state.account_sid).removesuffix(".json") + f"/{sid}.json"
    return {
        "account_sid": state.account_sid,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if service and not form.get("From") else "queued",
        "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
        "to": form.get("To"),
        "uri": uri,
    }


def _error(kind: str) -> web.Response:
    status, code, message = ERRORS[kind]
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


def _authorized(request: web.Request, state: FakeState) -> bool:
    auth = request.headers.get("Authorization", "")
    try:
        user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
    except ValueError:
        return False
    return user == state.account_sid == request.match_info["account"] and (
        password == state.auth_token
    )


async def create_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    # Counted on arrival, before the body is read: a client that times out while this
    # loaded server has not read its form yet has still reached "Twilio".
    record: dict[str, Any] = {"at": time.time(), "account_sid": request.match_info["account"]}
    state.requests.append(record)
    form = {k: str(v) for k, v in (await request.post()).items()}
    record |= {
        "to": form.get("To"),
        "body": form.get("Body"),
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "status_callback": form.get("StatusCallback"),
        "validity_period": form.get("ValidityPeriod"),
        "form": form,
    }
    if not _authorized(request, state):
        record["outcome"] = 401
        return _error("unauthorized")
    outcome = state.outcome(form.get("To", ""))
    if outcome == "slow":
        await asyncio.sleep(state.slow_seconds)
    elif outcome != "ok":
        record["outcome"] = ERRORS[outcome][0]
        return _error(outcome)
    sid = "SM" + secrets.token_hex(16)
    record.update(outcome=201, sid=sid)
    if state.callbacks and form.get("StatusCallback"):
        task = asyncio.create_task(_post_callbacks(state, sid, form))
        request.app[TASKS].add(task)
        task.add_done_callback(request.app[TASKS].discard)
    return web.json_response(_message_json(state, sid, form), status=201)


async def _post_callbacks(state: FakeState, sid: str, form: dict[str, str]) -> None:
    url = form["StatusCallback"]
    target = _via_proxy(url, state.callback_target)
    sender = form.get("From") or form.get("MessagingServiceSid", "")
    async with ClientSession() as session:
        for status in state.callbacks:
            await asyncio.sleep(0.05)
            final = status in ("undelivered", "failed")
            params = status_params(
                sid,
                status,
                to=form["To"],
                sender=sender,
                error_code=state.callback_error_code if final else None,
            )
            headers = {"X-Twilio-Signature": signature(state.auth_token, url, params)}
            async with session.post(target, data=params, headers=headers) as resp:
                state.callback_log.append({"sid": sid, "status": status, "http": resp.status})


def _via_proxy(url: str, proxy: str | None) -> str:
    if proxy is None:
        return url
    parts = urlsplit(url)
    return proxy.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


async def get_requests(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"requests": state.requests, "callbacks": state.callback_log})


async def get_stats(request: web.Request) -> web.Response:
    requests = request.app[STATE].requests
    accepted = sum(1 for r in requests if r.get("outcome") == 201)
    return web.json_response({"requests": len(requests), "accepted": accepted})


async def set_mode(request: web.Request) -> web.Response:
    data = await request.json()
    mode = data["mode"]
    if mode not in ERRORS and mode not in ("ok", "slow"):
        return web.json_response({"error": f"unknown mode {mode}"}, status=400)
    request.app[STATE].forced.extend([mode] * int(data.get("times", 1)))
    return web.json_response({"ok": True})


async def configure(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await request.json()
    state.slow_seconds = float(data.get("slow_seconds", state.slow_seconds))
    state.callbacks = list(data.get("callbacks", state.callbacks))
    state.callback_error_code = data.get("callback_error_code", state.callback_error_code)
    state.callback_target = data.get("callback_target", state.callback_target)
    return web.json_response({"ok": True})


async def reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.requests.clear()
    state.callback_log.clear()
    state.forced.clear()
    state.callbacks = []
    state.callback_error_code = None
    state.callback_target = None
    return web.json_response({"ok": True})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def build_app(account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> web.Application:
    app = web.Application()
    app[STATE] = FakeState(account_sid, auth_token)
    app[TASKS] = set()
    app.router.add_post(MESSAGES_PATH, create_message)
    app.router.add_get("/_fake/health", health)
    app.router.add_get("/_fake/requests", get_requests)
    app.router.add_get("/_fake/stats", get_stats)
    app.router.add_post("/_fake/mode", set_mode)
    app.router.add_post("/_fake/config", configure)
    app.router.add_post("/_fake/reset", reset)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"PORT {bound}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_twilio")
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


# ---------------------------------------------------------------- the handle


@dataclass
class FakeTwilio:
    """The fake's process and a synchronous client for its control endpoints."""

    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls) -> FakeTwilio:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_twilio"],
            cwd=ROOT,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "PORT 12345" once listening
        if not line.startswith("PORT "):
            proc.kill()
            raise RuntimeError(f"fake Twilio did not start: {line!r}")
        return cls(proc, int(line.split()[1]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _post(self, path: str, payload: dict[str, Any] | None = None) -> None:
        httpx.post(self.url + path, json=payload or {}, timeout=10).raise_for_status()

    def reset(self) -> None:
        self._post("/_fake/reset")

    def force(self, mode: str, times: int = 1) -> None:
        """The next ``times`` requests answer with ``mode`` whatever their ``To``."""
        self._post("/_fake/mode", {"mode": mode, "times": times})

    def configure(self, **options: Any) -> None:
        """slow_seconds, callbacks (statuses to post back), callback_error_code,
        callback_target (a proxy's address to deliver them to)."""
        self._post("/_fake/config", options)

    def requests(self) -> list[dict[str, Any]]:
        resp = httpx.get(self.url + "/_fake/requests", timeout=30)
        resp.raise_for_status()
        return list(resp.json()["requests"])

    def accepted_count(self) -> int:
        resp = httpx.get(self.url + "/_fake/stats", timeout=10)
        resp.raise_for_status()
        return int(resp.json()["accepted"])

    def callbacks(self) -> list[dict[str, Any]]:
        resp = httpx.get(self.url + "/_fake/requests", timeout=30)
        return list(resp.json()["callbacks"])

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r.get("outcome") == 201]

    def duplicates(self, accepted: list[dict[str, Any]] | None = None) -> int:
        """Accepted sends beyond the first per (to, body)."""
        counts = Counter((r["to"], r["body"]) for r in accepted or self.accepted())
        return sum(n - 1 for n in counts.values())

    def env(self, *, messaging_service: bool = False) -> dict[str, str]:
        """TWILIO_* environment for a process that should send through the fake."""
        return {
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "" if messaging_service else FROM_NUMBER,
            "TWILIO_MESSAGING_SERVICE_SID": MESSAGING_SERVICE_SID if messaging_service else "",
            "TWILIO_API_BASE": self.url,
        }

    def settings(self, base: Any, *, messaging_service: bool = False, **extra: Any) -> Any:
        """``base`` (scheduler Settings) pointed at the fake; ``extra`` overrides anything."""
        values = {
            "sms_backend": "twilio",
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": "" if messaging_service else FROM_NUMBER,
            "twilio_messaging_service_sid": MESSAGING_SERVICE_SID if messaging_service else "",
            "twilio_api_base": self.url,
        }
        return replace(base, **(values | extra))


if __name__ == "__main__":
    main()
