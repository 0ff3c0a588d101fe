"""Fixtures for both databases.

``pytest --db=sqlite`` (default) runs on a temporary SQLite file;
``pytest --db=postgres`` starts a throwaway PostgreSQL cluster on loopback.
The environment is set in pytest_configure, before any scheduler module is
imported, because settings (and Piccolo's engine) are read once per process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

_cluster: Any = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db", choices=("sqlite", "postgres"), default=os.environ.get("TEST_DB", "sqlite")
    )


def pytest_configure(config: pytest.Config) -> None:
    global _cluster
    db = config.getoption("--db")
    os.environ.update(
        {
            "APP_ENV": "test",
            "JOBS_ENABLED": "false",
            "SECRET_KEY": "test-secret-key-0123456789",
            # A real key, not one derived from SECRET_KEY: PostgreSQL refuses to start
            # without DATA_KEYS, whatever APP_ENV says (tests/test_startup_checks.py).
            "DATA_KEYS": "dGVzdC1kYXRhLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE",
            "RATE_LIMIT_SMS_PER_MINUTE": "0",
            # Tests book the same people many times; tests/test_ratelimits.py turns these on.
            "RATE_LIMIT_ID_PER_HOUR": "0",
            "RATE_LIMIT_PHONE_PER_HOUR": "0",
            "RATE_LIMIT_PHONE_TEXTS_PER_DAY": "0",
            # Tests fill slots with holds they never confirm; tests/test_squatting.py
            # turns the unconfirmed-hold cap and the short first hold on.
            "HOLD_UNCONFIRMED_PERCENT": "100",
            "HOLD_UNSTARTED_MINUTES": "0",
            # Tests book and then read availability at once; tests/test_calendar_cache.py
            # turns the cache on.
            "AVAILABILITY_CACHE_SECONDS": "0",
            "DB_POOL_MIN": "5",
            "DB_POOL_MAX": "50",
        }
    )
    if db == "postgres":
        from tests.support.pgcluster import start_cluster

        _cluster = start_cluster()
        _cluster.psql("CREATE DATABASE registry_test")
        os.environ["DATABASE_URL"] = _cluster.dsn("registry_test")
    else:
        tmp = tempfile.mkdtemp(prefix="registry-sqlite-")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/test.sqlite3"
    config.stash[DB_KEY] = db


def pytest_unconfigure(config: pytest.Config) -> None:
    if _cluster is not None:
        from tests.support.pgcluster import destroy_cluster

        destroy_cluster(_cluster)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {config.stash.get(DB_KEY, '?')} ({os.environ.get('DATABASE_URL')})"


DB_KEY = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def pg_cluster(db_kind: str) -> Any:
    """The session's PostgreSQL cluster (tests that start a replica of it)."""
    if _cluster is None:
        pytest.skip("PostgreSQL only: runs in the PostgreSQL pass of make test")
    return _cluster


@pytest.fixture(scope="session")
def db_kind(pytestconfig: pytest.Config) -> str:
    return pytestconfig.stash[DB_KEY]


@pytest.fixture(scope="session")
async def migrated() -> AsyncIterator[None]:
    from scheduler.__main__ import migrate
    from scheduler.db.engine import close_engine, open_engine
    from scheduler.settings import get_settings

    await migrate()
    await open_engine(get_settings())
    yield
    await close_engine()


@pytest.fixture
async def db(migrated: None) -> AsyncIterator[None]:
    """A clean database for each test (tables emptied, schema kept)."""
    from scheduler.db import full_marks
    from scheduler.db.engine import current_engine
    from scheduler.db.piccolo_app import APP_CONFIG

    full_marks.forget()  # its marks name slots of the database emptied here
    engine = current_engine()
    names = [t._meta.tablename for t in reversed(APP_CONFIG.table_classes)]
    if engine.engine_type == "postgres":
        # Slot ids are never reused, as in production: server processes kept across
        # tests (test_multiprocess) remember slots found full by id for a second
        # (scheduler/db/full_marks.py).
        last = await engine.run_ddl("SELECT last_value FROM slot_id_seq")
        await engine.run_ddl(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
        await engine.run_ddl(f"SELECT setval('slot_id_seq', {int(last[0]['last_value'])})")
    else:
        for name in names:
            await engine.run_ddl(f"DELETE FROM {name}")  # noqa: S608 - our own table names
    yield


@pytest.fixture
async def app(db: None) -> AsyncIterator[Any]:
    from scheduler.app import create_app

    # The engine is opened once per session by ``migrated``; jobs are off in tests
    # (they are called directly), so the app's lifespan has nothing left to do.
    # Entering it here would also tie anyio cancel scopes to the fixture's task.
    yield create_app()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client in the test's event loop: concurrent requests really overlap."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
