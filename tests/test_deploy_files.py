"""The container files describe the topology the docs promise, and every setting
they pass is one the service knows (a typo there would only show in production)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scheduler.settings import _SPEC

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_runs_postgres_two_web_replicas_and_a_worker() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "app", "worker"}
    app, worker, migrate = services["app"], services["worker"], services["migrate"]
    assert app["deploy"]["replicas"] == 2
    assert app["command"][-1] == "serve" and app["environment"]["JOBS_ENABLED"] == "false"
    assert worker["command"][-1] == "worker" and worker["environment"]["JOBS_ENABLED"] == "true"
    assert migrate["command"][-1] == "migrate"
    for name in ("app", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["env_file"] == ".env"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_only_sets_settings_the_service_knows() -> None:
    for name, service in compose()["services"].items():
        if name == "postgres":
            continue
        unknown = set(service["environment"]) - set(_SPEC)
        assert not unknown, f"{name}: {unknown}"


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "seed-demo", "create-staff"])
def test_every_process_command_exists(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scheduler", command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_image_runs_as_a_user_and_probes_liveness() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "\nUSER registry\n" in text
    assert "/health/live" in text.split("HEALTHCHECK", 1)[1]


def _compose_command() -> list[str]:
    """Docker's Compose plugin where installed, else Debian's docker-compose (CI installs it)."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail(
            "neither `docker compose` nor `docker-compose` is installed (.ci/run installs it)"
        )
    return [legacy]


def test_docker_compose_accepts_the_file() -> None:
    env = ROOT / "docker" / ".env"
    created = not env.exists()
    if created:
        shutil.copy(ROOT / "config" / "example.env", env)
    try:
        result = subprocess.run(
            [*_compose_command(), "-f", str(COMPOSE), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if created:
            env.unlink()
    assert result.returncode == 0, result.stderr
