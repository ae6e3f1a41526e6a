"""What teams write by hand instead: careful, pooled, correctly transactional.

Each baseline writes the same rows as paymentorch (payment, audit entry, outbox event)
into the same tables, so the comparison is of the code, not of the schema.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy import orm

from paymentorch import schema


def _snapshot(pid: uuid.UUID, status: str, at: datetime, version: int) -> dict[str, Any]:
    return {
        "id": str(pid),
        "customer_id": "ABCD-12345",
        "amount": "125.50",
        "currency": "USD",
        "status": status,
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
        "version": version,
        "failure_reason": None,
        "idempotency_key": None,
        "metadata": {},
    }


# -- naive-sql: async psycopg, BEGIN / three statements / COMMIT per step ------------------


class NaiveSql:
    """Hand-written async psycopg: one pooled connection per task, explicit transactions."""

    name = "naive-sql"

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def lifecycles(self, count: int) -> None:
        async with self.pool.connection() as conn:
            for _ in range(count):
                pid = uuid.uuid4()
                await self._create(conn, pid)
                await self._confirm(conn, pid)

    @staticmethod
    async def _create(conn: psycopg.AsyncConnection[Any], pid: uuid.UUID) -> None:
        now = datetime.now(UTC)
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO paymentorch_payments (id, customer_id, amount, currency, status,"
                " created_at, updated_at, version, metadata)"
                " VALUES (%s, %s, %s, %s, 'Pending', %s, %s, 1, '{}')",
                (pid, "ABCD-12345", Decimal("125.50"), "USD", now, now),
            )
            await conn.execute(
                "INSERT INTO paymentorch_audit_entries (payment_id, action, to_status, actor_id,"
                " at) VALUES (%s, 'created', 'Pending', 'bench', %s)",
                (pid, now),
            )
            await conn.execute(
                "INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at,"
                " payload, actor_id) VALUES (%s, %s, 'payment.created', %s, %s, 'bench')",
                (uuid.uuid4(), pid, now, Jsonb(_snapshot(pid, "Pending", now, 1))),
            )

    @staticmethod
    async def _confirm(conn: psycopg.AsyncConnection[Any], pid: uuid.UUID) -> None:
        now = datetime.now(UTC)
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE paymentorch_payments SET status = 'Confirmed', version = version + 1,"
                " updated_at = %s WHERE id = %s AND status = 'Pending'",
                (now, pid),
            )
            if cur.rowcount != 1:
                raise RuntimeError("not pending")
            await conn.execute(
                "INSERT INTO paymentorch_audit_entries (payment_id, action, from_status,"
                " to_status, actor_id, at) VALUES (%s, 'confirmed', 'Pending', 'Confirmed',"
                " 'bench', %s)",
                (pid, now),
            )
            await conn.execute(
                "INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at,"
                " payload, actor_id) VALUES (%s, %s, 'payment.confirmed', %s, %s, 'bench')",
                (uuid.uuid4(), pid, now, Jsonb(_snapshot(pid, "Confirmed", now, 2))),
            )


# -- one-statement: async psycopg, each step one data-modifying CTE in autocommit -----------


class OneStatement:
    """The ceiling for a step on PostgreSQL: one statement, one round trip, no Python around.

    The same rows as paymentorch writes, each step one CTE in autocommit, its values
    built inline: what a careful team with nothing else to do would write.
    """

    name = "one-statement"

    _CREATE = """
        WITH p AS (
          INSERT INTO paymentorch_payments (id, customer_id, amount, currency, status,
            created_at, updated_at, version, metadata)
          VALUES (%(id)s, 'ABCD-12345', 125.50, 'USD', 'Pending', %(at)s, %(at)s, 1, '{}')
          RETURNING id
        ), a AS (
          INSERT INTO paymentorch_audit_entries (payment_id, action, to_status, actor_id, at)
          SELECT id, 'created', 'Pending', 'bench', %(at)s FROM p
        )
        INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at, payload,
          actor_id)
        SELECT %(event)s, id, 'payment.created', %(at)s, %(payload)s, 'bench' FROM p
    """
    _CONFIRM = """
        WITH p AS (
          UPDATE paymentorch_payments SET status = 'Confirmed', version = version + 1,
            updated_at = %(at)s
          WHERE id = %(id)s AND status = 'Pending'
          RETURNING id
        ), a AS (
          INSERT INTO paymentorch_audit_entries (payment_id, action, from_status, to_status,
            actor_id, at)
          SELECT id, 'confirmed', 'Pending', 'Confirmed', 'bench', %(at)s FROM p
        )
        INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at, payload,
          actor_id)
        SELECT %(event)s, id, 'payment.confirmed', %(at)s, %(payload)s, 'bench' FROM p
    """

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def lifecycles(self, count: int) -> None:
        async with self.pool.connection() as conn:
            for _ in range(count):
                pid = uuid.uuid4()
                now = datetime.now(UTC)
                await conn.execute(
                    self._CREATE,
                    {
                        "id": pid,
                        "at": now,
                        "event": uuid.uuid4(),
                        "payload": Jsonb(_snapshot(pid, "Pending", now, 1)),
                    },
                )
                now = datetime.now(UTC)
                cur = await conn.execute(
                    self._CONFIRM,
                    {
                        "id": pid,
                        "at": now,
                        "event": uuid.uuid4(),
                        "payload": Jsonb(_snapshot(pid, "Confirmed", now, 2)),
                    },
                )
                if cur.rowcount != 1:
                    raise RuntimeError("not pending")


# -- orm: SQLAlchemy ORM, a Session per operation, version column ------------------------


class PaymentRow:
    """A payment as the ORM maps it."""

    id: uuid.UUID
    status: str
    version: int
    updated_at: datetime


class AuditRow:
    """An audit entry as the ORM maps it."""


class OutboxRow:
    """An outbox event as the ORM maps it."""


_registry = orm.registry()
_registry.map_imperatively(
    PaymentRow,
    schema.payments,
    properties={"meta": schema.payments.c.metadata},
    version_id_col=schema.payments.c.version,
)
_registry.map_imperatively(AuditRow, schema.audit_entries)
_registry.map_imperatively(OutboxRow, schema.outbox)


class Orm:
    """SQLAlchemy ORM (sync): a Session per operation, optimistic version column."""

    name = "orm"

    def __init__(self, engine: sa.Engine) -> None:
        self.sessions = orm.sessionmaker(engine, expire_on_commit=False)

    def lifecycles(self, count: int) -> None:
        for _ in range(count):
            pid = self._create()
            self._confirm(pid)

    def _create(self) -> uuid.UUID:
        pid = uuid.uuid4()
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
            session.add(
                PaymentRow(  # type: ignore[call-arg]
                    id=pid,
                    customer_id="ABCD-12345",
                    amount=Decimal("125.50"),
                    currency="USD",
                    status="Pending",
                    created_at=now,
                    updated_at=now,
                    meta={},
                )
            )
            session.add(
                AuditRow(  # type: ignore[call-arg]
                    payment_id=pid,
                    action="created",
                    to_status="Pending",
                    actor_id="bench",
                    at=now,
                )
            )
            session.add(
                OutboxRow(  # type: ignore[call-arg]
                    event_id=uuid.uuid4(),
                    payment_id=pid,
                    type="payment.created",
                    occurred_at=now,
                    payload=_snapshot(pid, "Pending", now, 1),
                    actor_id="bench",
                )
            )
        return pid

    def _confirm(self, pid: uuid.UUID) -> None:
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
            payment = session.get(PaymentRow, pid)
            if payment is None or payment.status != "Pending":
                raise RuntimeError("not pending")
            payment.status = "Confirmed"
            payment.updated_at = now
            session.add(
                AuditRow(  # type: ignore[call-arg]
                    payment_id=pid,
                    action="confirmed",
                    from_status="Pending",
                    to_status="Confirmed",
                    actor_id="bench",
                    at=now,
                )
            )
            session.add(
                OutboxRow(  # type: ignore[call-arg]
                    event_id=uuid.uuid4(),
                    payment_id=pid,
                    type="payment.confirmed",
                    occurred_at=now,
                    payload=_snapshot(pid, "Confirmed", now, 2),
                    actor_id="bench",
                )
            )


# -- sqlite3: the standard library, WAL, synchronous=NORMAL ------------------------------


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Sqlite3:
    """Hand-written stdlib sqlite3: BEGIN IMMEDIATE / three statements / COMMIT per step."""

    name = "sqlite3"

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()
        self.connections: list[sqlite3.Connection] = []

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self.local.conn = conn
            self.connections.append(conn)
        return conn

    def lifecycles(self, count: int) -> None:
        conn = self._conn()
        for _ in range(count):
            pid = uuid.uuid4()
            now = datetime.now(UTC)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO paymentorch_payments (id, customer_id, amount, currency, status,"
                " created_at, updated_at, version, metadata)"
                " VALUES (?, ?, ?, ?, 'Pending', ?, ?, 1, '{}')",
                (pid.hex, "ABCD-12345", "125.50", "USD", _stamp(now), _stamp(now)),
            )
            conn.execute(
                "INSERT INTO paymentorch_audit_entries (payment_id, action, to_status, actor_id,"
                " at) VALUES (?, 'created', 'Pending', 'bench', ?)",
                (pid.hex, _stamp(now)),
            )
            conn.execute(
                "INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at,"
                " payload, actor_id) VALUES (?, ?, 'payment.created', ?, ?, 'bench')",
                (
                    uuid.uuid4().hex,
                    pid.hex,
                    _stamp(now),
                    json.dumps(_snapshot(pid, "Pending", now, 1)),
                ),
            )
            conn.execute("COMMIT")
            now = datetime.now(UTC)
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(
                "UPDATE paymentorch_payments SET status = 'Confirmed', version = version + 1,"
                " updated_at = ? WHERE id = ? AND status = 'Pending'",
                (_stamp(now), pid.hex),
            )
            if cur.rowcount != 1:
                conn.execute("ROLLBACK")
                raise RuntimeError("not pending")
            conn.execute(
                "INSERT INTO paymentorch_audit_entries (payment_id, action, from_status,"
                " to_status, actor_id, at) VALUES (?, 'confirmed', 'Pending', 'Confirmed',"
                " 'bench', ?)",
                (pid.hex, _stamp(now)),
            )
            conn.execute(
                "INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at,"
                " payload, actor_id) VALUES (?, ?, 'payment.confirmed', ?, ?, 'bench')",
                (
                    uuid.uuid4().hex,
                    pid.hex,
                    _stamp(now),
                    json.dumps(_snapshot(pid, "Confirmed", now, 2)),
                ),
            )
            conn.execute("COMMIT")

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
