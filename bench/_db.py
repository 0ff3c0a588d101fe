"""The database around a benchmark's measuring child: a throwaway PostgreSQL
cluster (the test suite's) or a fresh SQLite file, the child process run against
it with the service's test settings, and its last output line read as JSON.

The child is the benchmark script itself (``--child``): it opens the engine for one
database, so the parent can measure both in turn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_child(
    script: str, database: str, args: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``script --child *args`` on a new ``database`` ("postgres" or "sqlite"),
    removed afterwards (PostgreSQL; the SQLite file stays in a temp directory)."""
    child_env = os.environ | {
        "APP_ENV": "test",
        "JOBS_ENABLED": "false",
        "SECRET_KEY": "bench-secret-key-0123456789",
        # PostgreSQL refuses to start without DATA_KEYS (issue 13).
        "DATA_KEYS": "YmVuY2gtZGF0YS1rZXktMDEyMzQ1Njc4OWFiY2RlZjA",
        "DB_POOL_MIN": "2",
        "DB_POOL_MAX": "10",
    }
    child_env |= env or {}
    cluster = None
    if database == "postgres":
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.support.pgcluster import destroy_cluster, start_cluster

        cluster = start_cluster()
        cluster.psql("CREATE DATABASE bench")
        child_env["DATABASE_URL"] = cluster.dsn("bench")
        # For a child that reports the cluster's CPU (bench/_common.postgres_cpu).
        child_env["BENCH_PG_DATA"] = str(cluster.data)
    else:
        child_env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.sqlite3"
    try:
        out = subprocess.run(
            [sys.executable, script, "--child", *args],
            env=child_env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
    finally:
        if cluster is not None:
            destroy_cluster(cluster)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))
