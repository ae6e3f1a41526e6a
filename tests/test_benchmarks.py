"""The benchmark's hand-written baselines write the rows paymentorch writes, lifecycle for
lifecycle, so that its ratios compare code, not workloads."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from benchmarks import budget
from benchmarks.baselines import Dicts
from benchmarks.harness import IMPLEMENTATIONS, Databases, _lifecycles

import paymentorch as po

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


async def _memory_records(store: Any, payment_ids: list[UUID]) -> Rows:
    """What the in-memory store holds after the lifecycles, table by table as the SQL
    stores would hold it (ids and times aside)."""
    now = datetime.now(UTC)
    events = []
    while claimed := await store.claim_events(100, now=now, lease_until=now):
        events += [m.event for m in claimed]
        await store.mark_delivered([m.event.id for m in claimed])
    payments = [await store.get(pid) for pid in payment_ids]
    rows: Rows = {
        "payments": [(p.customer_id, _normal("payload", p.to_dict())) for p in payments],
        "audit": [
            (a.action, a.from_status and a.from_status.value, a.to_status.value, a.actor_id)
            for pid in payment_ids
            for a in await store.audit_trail(pid)
        ],
        "outbox": [
            (e.type, _normal("payload", e.payment.to_dict()), e.actor_id) for e in events
        ],
        "exposure": [
            (p.customer_id, "USD", await store.exposure(p.customer_id, "USD")) for p in payments
        ],
        "journal": [
            (entry.kind, tuple(
                (line.account.kind.value, line.account.owner, line.account.currency, line.amount)
                for line in entry.lines
            ))
            for pid in payment_ids
            for entry in await store.journal(pid)
        ],
    }  # fmt: skip
    return {table: sorted(values, key=repr) for table, values in rows.items()}


def _dicts_records(fake: Dicts) -> Rows:
    """The same of the hand-written fake."""
    rows: Rows = {
        "payments": [
            (p.customer_id, _normal("payload", p.snapshot())) for p in fake.payments.values()
        ],
        "audit": [a[:4] for trail in fake.audit.values() for a in trail],
        "outbox": [(e[2], _normal("payload", e[4].snapshot()), e[5]) for e in fake.outbox],
        "exposure": [(*key, amount) for key, amount in fake.exposure.items()],
        "journal": [
            (kind, tuple(lines))
            for entries in fake.journal.values()
            for _, kind, _, lines in entries
        ],
    }  # fmt: skip
    return {table: sorted(values, key=repr) for table, values in rows.items()}


async def test_the_in_memory_baseline_holds_what_the_memory_store_holds() -> None:
    """The hand-written fake's lifecycles leave the records the library's in-memory store
    leaves: payment, audit entries, events, exposure, journal entry and lines."""
    async with await po.open_service("memory://") as service:
        await _lifecycles(service)(LIFECYCLES)
        store = service.store
        ids = [p.id for p in (await service.list_payments(limit=10)).items]
        expected = await _memory_records(store, ids)
    assert [len(rows) for rows in expected.values()] == [LIFECYCLES * n for n in (1, 2, 2, 1, 1)]
    fake = Dicts()
    await fake.lifecycles(LIFECYCLES)
    assert _dicts_records(fake) == expected


async def test_the_budget_times_every_piece() -> None:
    """``benchmarks.budget`` times each piece of the service's own work (a quick run)."""
    found = await budget.pieces(calls=200)
    assert len(found) == 7
    assert all(micros > 0 for micros in found.values())
