"""The benchmark's hand-written baselines write the rows paymentorch writes, lifecycle for
lifecycle, so that its ratios compare code, not workloads."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from benchmarks.harness import IMPLEMENTATIONS, Databases

LIFECYCLES = 3
PER_LIFECYCLE = {
    "paymentorch_payments": 1,
    "paymentorch_audit_entries": 2,
    "paymentorch_outbox": 2,
    "paymentorch_exposure": 1,  # each lifecycle has a customer of its own
    "paymentorch_journal_entries": 1,
    "paymentorch_postings": 2,
}
# What differs from one run to the next: ids, times, the order rows were numbered in.
VOLATILE = {"id", "payment_id", "event_id", "entry_id", "seq", "created_at", "updated_at"}
VOLATILE |= {"at", "occurred_at"}
Rows = dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def databases(
    postgres_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    """The benchmark's own PostgreSQL database and SQLite template."""
    db = Databases(postgres_database, tmp_path_factory.mktemp("bench"))
    yield db
    db.drop()


def _normal(column: str, value: Any) -> Any:
    if column == "payload":
        payload = json.loads(value) if isinstance(value, str) else value
        return tuple(sorted((k, repr(v)) for k, v in payload.items() if k not in VOLATILE))
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _tables(rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> Rows:
    found: Rows = {}
    for table, (columns, values) in rows.items():
        if table == "paymentorch_alembic_version":
            continue
        kept = [
            tuple(_normal(c, v) for c, v in zip(columns, row, strict=True) if c not in VOLATILE)
            for row in values
        ]
        if kept:
            found[table] = sorted(kept, key=repr)
    return found


def _postgres_rows(url: str) -> Rows:
    with psycopg.connect(url) as conn:
        names = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename LIKE 'paymentorch%%'"
        ).fetchall()
        rows = {}
        for (name,) in names:
            cur = conn.execute(f"SELECT * FROM {name}")  # names read from the catalog
            rows[name] = ([d.name for d in cur.description or ()], cur.fetchall())
    return _tables(rows)


def _sqlite_rows(path: Path) -> Rows:
    conn = sqlite3.connect(path)
    try:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'paymentorch%'"
        ).fetchall()
        rows = {}
        for (name,) in names:
            cur = conn.execute(f"SELECT * FROM {name}")  # names read from the catalog
            rows[name] = ([d[0] for d in cur.description], cur.fetchall())
    finally:
        conn.close()
    return _tables(rows)


def _run(db: Databases, name: str) -> Rows:
    asyncio.run(IMPLEMENTATIONS[name](db, LIFECYCLES, 1))
    if "sqlite" in name:
        return _sqlite_rows(db.folder / f"run-{db.runs}.db")
    return _postgres_rows(db.pg_url)


@pytest.mark.postgres
@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("paymentorch-postgresql", "one-statement"),
        ("paymentorch-postgresql", "naive-sql"),
        ("paymentorch-postgresql", "orm"),
        ("paymentorch-sqlite", "sqlite3"),
    ],
)
def test_a_baseline_writes_the_rows_paymentorch_writes(
    databases: Databases, ours: str, theirs: str
) -> None:
    """Each baseline's lifecycles leave the rows the library's leave on the same schema
    (ids and times aside): payment, audit entries, events, exposure, journal entry and
    lines, one customer per lifecycle."""
    expected = _run(databases, ours)
    assert {table: len(rows) for table, rows in expected.items()} == {
        table: count * LIFECYCLES for table, count in PER_LIFECYCLE.items()
    }
    assert _run(databases, theirs) == expected
