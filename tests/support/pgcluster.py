"""A throwaway PostgreSQL cluster on loopback for the test suite.

PostgreSQL refuses to run as root, and CI runs as root: the cluster is created
and started as the ``postgres`` system user in a temporary directory it owns.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    raise RuntimeError(f"{name} not found: install Debian's postgresql package (make test does)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Cluster:
    root: Path
    port: int
    extra: str = ""  # more ``-c name=value`` server options (bench: pg_stat_statements)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_owner([_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=400 -c shared_buffers=128MB"
            + (f" {self.extra}" if self.extra else "")
        )
        self.pg_ctl("-o", options, "-l", str(self.root / "server.log"), "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [_bin("psql"), self.dsn(database), "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()


def _new_cluster(prefix: str, *create: str) -> Cluster:
    """A cluster in a fresh directory the postgres user owns, its data directory
    made by ``create`` (a PostgreSQL program and its arguments, ``-D`` added)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root=root, port=_free_port())
    command = [_bin(create[0]), *create[1:], "-D", str(cluster.data)]
    subprocess.run(_as_owner(command), check=True, capture_output=True)
    return cluster


def start_cluster(extra: str = "") -> Cluster:
    cluster = _new_cluster(
        "registry-pg-", "initdb", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"
    )
    cluster.extra = extra
    cluster.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            cluster.psql("SELECT 1")
            break
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return cluster


def start_standby(primary: Cluster) -> Cluster:
    """A streaming replica of ``primary``: ``pg_basebackup -R`` (which writes
    primary_conninfo and standby.signal), started on its own port, hot_standby on."""
    standby = _new_cluster(
        "registry-pg-standby-",
        "pg_basebackup",
        *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
        *("-R", "-X", "stream", "--checkpoint=fast"),
    )
    standby.start()
    return standby


def destroy_cluster(cluster: Cluster) -> None:
    try:
        if (cluster.data / "postmaster.pid").exists():  # a test may have stopped it
            cluster.stop()
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)
