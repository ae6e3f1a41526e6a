"""Backends for the contract suite: memory, a SQLite file and a throwaway PostgreSQL database."""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from paymentorch._migrate import migrate_sync
from paymentorch.adapters import open_store
from paymentorch.testing import Backend

pytest_plugins = ["pytester"]  # the mutant-store tests run the shipped suite in a sub-session

POSTGRES_URL = os.environ.get("PAYMENTORCH_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("PAYMENTORCH_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies, so migrations run once."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate_sync(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_backend(sqlite_template: Path, tmp_path: Path) -> Backend:
    """A fresh SQLite file."""
    path = tmp_path / "payments.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    return Backend(
        "sqlite", functools.partial(open_store, url, create_schema=False), shared=True, url=url
    )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throwaway database for this test session, migrated once, dropped at the end."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("PAYMENTORCH_REQUIRE_POSTGRES=1 but PAYMENTORCH_TEST_POSTGRES_URL is unset")
        pytest.skip("set PAYMENTORCH_TEST_POSTGRES_URL to run the PostgreSQL tests")
    import psycopg

    name = f"paymentorch_test_{uuid.uuid4().hex[:12]}"
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    url = f"{base}/{name}"
    migrate_sync(url)
    yield url
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def empty_postgres_url(postgres_database: str) -> Iterator[str]:
    """A new, empty PostgreSQL database with a name of its own, dropped after the test."""
    import psycopg

    name = f"paymentorch_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_database.rpartition('/')[0]}/{name}"
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database, with no schema: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


@pytest.fixture
def postgres_backend(postgres_database: str) -> Backend:
    """The session's PostgreSQL database, emptied."""
    import psycopg

    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE paymentorch_payments, paymentorch_audit_entries, paymentorch_outbox,"
            " paymentorch_operations, paymentorch_inbox, paymentorch_exposure,"
            " paymentorch_plans, paymentorch_installments, paymentorch_late_fees,"
            " paymentorch_request_keys, paymentorch_journal_entries, paymentorch_postings,"
            " paymentorch_deliveries RESTART IDENTITY"
        )
    return Backend(
        "postgresql",
        functools.partial(open_store, postgres_database, pool_size=8),
        shared=True,
        url=postgres_database,
    )


@pytest.fixture
def memory_backend() -> Backend:
    """A new in-memory store."""
    return Backend("memory", functools.partial(open_store, "memory://"))


@pytest.fixture(
    params=[
        pytest.param("memory_backend", marks=pytest.mark.memory, id="memory"),
        pytest.param("sqlite_backend", marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param("postgres_backend", marks=pytest.mark.postgres, id="postgres"),
    ]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend, one after another."""
    found: Backend = request.getfixturevalue(request.param)
    return found


@pytest.fixture(
    params=[
        pytest.param("sqlite_backend", marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param("postgres_backend", marks=pytest.mark.postgres, id="postgres"),
    ]
)
def shared_backend(request: pytest.FixtureRequest) -> Backend:
    """The backends that several processes can share and reopen."""
    found: Backend = request.getfixturevalue(request.param)
    return found
