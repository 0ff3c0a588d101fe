"""A real server for browser tests: uvicorn in a subprocess on a free loopback port,
on the test session's database (DATABASE_URL, set by conftest.py); and how those
tests launch Debian's Chromium.

The server can be stopped and started again on the same port, as a restart in
production would: live clients (the display board's EventSource) must reconnect.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the rest keeps it from calling out anywhere.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# Open server-sent event streams never end by themselves: uvicorn waits this long
# for them on SIGTERM, then closes them (what a deploy's restart does too).
GRACEFUL_SECONDS = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``scheduler.asgi:app`` under uvicorn; ``base`` is its http://127.0.0.1:port."""

    def __init__(
        self,
        log_path: Path,
        port: int | None = None,
        *,
        env: dict[str, str] | None = None,
        serve: bool = False,
    ) -> None:
        self.log_path = log_path
        self.port = port or free_port()
        # Extra settings, and whether to start it as production does
        # (``python -m scheduler serve``, which passes settings to uvicorn).
        self.extra_env = env or {}
        self.serve = serve
        self.base = f"http://127.0.0.1:{self.port}"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        env = (
            os.environ
            | {
                "DATABASE_URL": os.environ["DATABASE_URL"],
                "APP_ENV": "test",
                "JOBS_ENABLED": "false",
                "SECRET_KEY": os.environ["SECRET_KEY"],
                "RATE_LIMIT_SMS_PER_MINUTE": "0",
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
            }
            | self.extra_env
        )
        if self.serve:
            command = ["-m", "scheduler", "serve"]
        else:
            command = ["-m", "uvicorn", "scheduler.asgi:app", "--host", "127.0.0.1"]
            command += ["--port", str(self.port)]
            command += ["--timeout-graceful-shutdown", str(GRACEFUL_SECONDS)]
        with self.log_path.open("ab") as log:  # appended: a restart keeps the first run's log
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        await self._wait_until_up()

    async def _wait_until_up(self) -> None:
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        async with httpx.AsyncClient() as client:
            while asyncio.get_running_loop().time() < deadline:
                if not self.running:
                    raise RuntimeError(f"server exited; see {self.log_path}")
                try:
                    if (await client.get(self.base + "/")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"server did not start within {START_TIMEOUT:.0f} s")

    async def stop(self) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL if it does not go in time."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def running_server(
    log_path: Path, *, env: dict[str, str] | None = None, serve: bool = False
) -> AsyncIterator[Server]:
    server = Server(log_path, env=env, serve=serve)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
