"""The real process refuses to start on the development secret or without DATA_KEYS
whenever it would hold real data (PostgreSQL) or face the public (https base URL),
whatever APP_ENV says; a development set-up (SQLite, http) still starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.settings import DEV_SECRET_KEY

ROOT = Path(__file__).resolve().parents[1]
KEY = "dGVzdC1kYXRhLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE"
SECRET = "a-long-random-secret-for-this-test-0123456789"
PG = "postgresql://registry:pw@127.0.0.1:1/registry"


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m scheduler serve`` with only these settings (on a port nobody uses:
    a process that does start is stopped by the timeout, see below)."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler", "serve"],
        env={"PATH": "/usr/bin:/bin", "PORT": "1", "JOBS_ENABLED": "false"} | env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize("app_env", ["development", "test"])
@pytest.mark.parametrize(
    ("where", "settings"),
    [
        ("postgres", {"DATABASE_URL": PG}),
        ("https", {"PUBLIC_BASE_URL": "https://yuyue.example.cn"}),
    ],
)
def test_refuses_the_dev_secret_and_missing_data_keys(
    app_env: str, where: str, settings: dict[str, str]
) -> None:
    dev = _start({"APP_ENV": app_env, "SECRET_KEY": DEV_SECRET_KEY, "DATA_KEYS": KEY} | settings)
    assert dev.returncode == 2, (where, dev.stderr)
    assert "SECRET_KEY: must be set" in dev.stderr
    no_keys = _start({"APP_ENV": app_env, "SECRET_KEY": SECRET} | settings)
    assert no_keys.returncode == 2, (where, no_keys.stderr)
    assert "DATA_KEYS: required" in no_keys.stderr
    assert "SECRET_KEY" not in no_keys.stderr


def test_a_hardened_configuration_gets_past_the_checks() -> None:
    """With a real secret and keys the same settings are accepted: the process gets
    as far as opening its port (port 1 is refused to a non-root user, or, as root,
    the database at 127.0.0.1:1 is unreachable): not a settings error."""
    proc = _start(
        {"APP_ENV": "test", "SECRET_KEY": SECRET, "DATA_KEYS": KEY, "DATABASE_URL": PG}
        | {"PUBLIC_BASE_URL": "https://yuyue.example.cn"}
    )
    assert "Invalid settings" not in proc.stderr, proc.stderr
    assert proc.returncode != 2


def test_development_on_sqlite_still_starts_with_the_dev_secret() -> None:
    from scheduler.settings import parse_settings

    settings = parse_settings({"APP_ENV": "development"})
    assert settings.secret_key == DEV_SECRET_KEY and not settings.data_keys
