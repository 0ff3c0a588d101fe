"""Settings are typed, documented, and fail loudly on bad values."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from scheduler.settings import _SPEC, Settings, SettingsError, parse_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_no_environment() -> None:
    settings = parse_settings({})
    assert settings == Settings()
    assert settings.is_sqlite


def test_values_are_typed() -> None:
    settings = parse_settings(
        {
            "PORT": "9000",
            "JOBS_ENABLED": "no",
            "BOOKING_OPENS_AT": "07:45",
            "DATABASE_URL": "postgresql://u:p@h:5432/d",
            # PostgreSQL needs a real secret and keys (tests/test_startup_checks.py).
            "SECRET_KEY": "x" * 40,
            "DATA_KEYS": "A" * 43,
        }
    )
    assert settings.port == 9000
    assert settings.jobs_enabled is False
    assert settings.booking_opens_at == time(7, 45)
    assert not settings.is_sqlite


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings(
            {
                "PORT": "eighty",
                "JOBS_ENABLED": "maybe",
                "DEFAULT_TIMEZONE": "Mars/Base",
                "HOLD_MINUTES": "0",
            }
        )
    message = str(info.value)
    for name in ("PORT", "JOBS_ENABLED", "DEFAULT_TIMEZONE", "HOLD_MINUTES"):
        assert name in message


def test_production_refuses_the_development_key() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        parse_settings({"APP_ENV": "production"})
    key = "A" * 43  # 32 bytes of urlsafe base64
    production = {"APP_ENV": "production", "SECRET_KEY": "x" * 40, "DATA_KEYS": key}
    assert parse_settings(production).app_env == "production"


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = parse_settings({"TRUSTED_PROXIES": " 10.0.0.5, 172.16.0.0/12,fd00::/8 "})
    assert settings.trusted_proxies == "10.0.0.5,172.16.0.0/12,fd00::/8"
    for bad in ("*", "proxy.internal", "10.0.0.0/33"):
        with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
            parse_settings({"TRUSTED_PROXIES": bad})


def test_example_env_documents_every_setting() -> None:
    text = (ROOT / "config" / "example.env").read_text(encoding="utf-8")
    documented = set(re.findall(r"^([A-Z_]+)=", text, flags=re.M))
    assert documented == set(_SPEC)
    # And the documented defaults parse.
    values = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.M))
    assert parse_settings(values) == Settings()


def test_bad_setting_stops_the_cli_with_a_clear_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "migrate"],
        env={"PORT": "-1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "PORT='-1'" in proc.stderr
