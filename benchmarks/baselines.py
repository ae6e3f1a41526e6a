"""What teams write by hand instead: careful, pooled, correctly transactional.

Each baseline writes the same rows as paymentorch into the same tables, so the comparison
is of the code, not of the schema: a creation inserts the payment, its audit entry and
outbox event, and moves the customer's exposure up by the amount; a confirmation updates
the payment (status, version, captured amount), inserts its audit entry and event, moves
the exposure back down, and posts the capture's journal entry with its two lines
(clearing ``manual`` debited, payable ``default`` credited). Every lifecycle has a
customer of its own, as a shop's traffic does (``Customers``).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy import orm

from paymentorch import schema

AMOUNT = Decimal("125.50")
"""What every lifecycle's payment is for, in USD."""


class Customers:
    """A new customer id for each lifecycle (``AAAA-00000``, ``AAAA-00001``, ...: the
    default pattern), safe to draw from many tasks and threads."""

    def __init__(self) -> None:
        self._numbers = itertools.count()

    def next(self) -> str:
        """The next customer's id."""
        letters, digits = divmod(next(self._numbers), 100_000)
        word = ""
        for _ in range(4):
            letters, letter = divmod(letters, 26)
            word = chr(ord("A") + letter) + word
        return f"{word}-{digits:05d}"


def _snapshot(
    pid: uuid.UUID, customer: str, status: str, created: datetime, at: datetime
) -> dict[str, Any]:
    """The event's payload: the payment's ``to_dict()`` after its creation (Pending) or
    its confirmation."""
    return {
        "id": str(pid),
        "customer_id": customer,
        "amount": str(AMOUNT),
        "currency": "USD",
        "status": status,
        "created_at": created.isoformat(),
        "updated_at": at.isoformat(),
        "version": 1 if status == "Pending" else 2,
        "failure_reason": None,
        "idempotency_key": None,
        "metadata": {},
        "captured_amount": str(AMOUNT if status == "Confirmed" else Decimal("0.00")),
        "refunded_amount": "0.00",
        "has_plan": False,
    }


_POSTINGS = (  # (line, account kind, owner, sign): a capture's entry
    (1, "clearing", "manual", 1),
    (2, "payable", "default", -1),
)


# -- naive-sql: async psycopg, BEGIN / a statement per row / COMMIT per step --------------

_INSERT_PAYMENT = (
    "INSERT INTO paymentorch_payments (id, customer_id, amount, currency, status,"
    " created_at, updated_at, version, metadata) VALUES (%s, %s, %s, 'USD', 'Pending', %s, %s,"
    " 1, '{}')"
)
_INSERT_AUDIT = (
    "INSERT INTO paymentorch_audit_entries (payment_id, action, from_status, to_status,"
    " actor_id, at, event_id) VALUES (%s, %s, %s, %s, 'bench', %s, %s)"
)
_INSERT_EVENT = (
    "INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at, payload,"
    " actor_id) VALUES (%s, %s, %s, %s, %s, 'bench')"
)
_MOVE_EXPOSURE = (
    "INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)"
    " VALUES (%(customer)s, 'USD', GREATEST(%(delta)s::numeric, 0))"
    " ON CONFLICT (customer_id, currency) DO UPDATE SET amount = GREATEST(e.amount + %(delta)s, 0)"
)
_INSERT_ENTRY = (
    "INSERT INTO paymentorch_journal_entries (id, payment_id, kind, at)"
    " VALUES (%s, %s, 'capture', %s)"
)
_INSERT_POSTING = (
    "INSERT INTO paymentorch_postings (entry_id, line, payment_id, account_kind, owner,"
    " currency, amount) VALUES (%s, %s, %s, %s, %s, 'USD', %s)"
)


class NaiveSql:
    """Hand-written async psycopg: one pooled connection per task, explicit transactions."""

    name = "naive-sql"

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        self.customers = Customers()

    async def lifecycles(self, count: int) -> None:
        async with self.pool.connection() as conn:
            for _ in range(count):
                pid, customer = uuid.uuid4(), self.customers.next()
                created = await self._create(conn, pid, customer)
                await self._confirm(conn, pid, customer, created)

    @staticmethod
    async def _create(
        conn: psycopg.AsyncConnection[Any], pid: uuid.UUID, customer: str
    ) -> datetime:
        now, event = datetime.now(UTC), uuid.uuid4()
        snapshot = _snapshot(pid, customer, "Pending", now, now)
        async with conn.transaction():
            await conn.execute(_INSERT_PAYMENT, (pid, customer, AMOUNT, now, now))
            await conn.execute(_INSERT_AUDIT, (pid, "created", None, "Pending", now, event))
            await conn.execute(_INSERT_EVENT, (event, pid, "payment.created", now, Jsonb(snapshot)))
            await conn.execute(_MOVE_EXPOSURE, {"customer": customer, "delta": AMOUNT})
        return now

    @staticmethod
    async def _confirm(
        conn: psycopg.AsyncConnection[Any], pid: uuid.UUID, customer: str, created: datetime
    ) -> None:
        now, event, entry = datetime.now(UTC), uuid.uuid4(), uuid.uuid4()
        snapshot = _snapshot(pid, customer, "Confirmed", created, now)
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE paymentorch_payments SET status = 'Confirmed', version = version + 1,"
                " updated_at = %s, captured_amount = amount WHERE id = %s AND status = 'Pending'",
                (now, pid),
            )
            if cur.rowcount != 1:
                raise RuntimeError("not pending")
            await conn.execute(
                _INSERT_AUDIT, (pid, "confirmed", "Pending", "Confirmed", now, event)
            )
            await conn.execute(
                _INSERT_EVENT, (event, pid, "payment.confirmed", now, Jsonb(snapshot))
            )
            await conn.execute(_MOVE_EXPOSURE, {"customer": customer, "delta": -AMOUNT})
            await conn.execute(_INSERT_ENTRY, (entry, pid, now))
            for line, kind, owner, sign in _POSTINGS:
                await conn.execute(_INSERT_POSTING, (entry, line, pid, kind, owner, sign * AMOUNT))


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
          VALUES (%(id)s, %(customer)s, 125.50, 'USD', 'Pending', %(at)s, %(at)s, 1, '{}')
          RETURNING id, customer_id, currency, amount
        ), a AS (
          INSERT INTO paymentorch_audit_entries (payment_id, action, to_status, actor_id, at,
            event_id)
          SELECT id, 'created', 'Pending', 'bench', %(at)s, %(event)s FROM p
        ), x AS (
          INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)
          SELECT customer_id, currency, amount FROM p
          ON CONFLICT (customer_id, currency) DO UPDATE SET amount = e.amount + excluded.amount
        )
        INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at, payload,
          actor_id)
        SELECT %(event)s, id, 'payment.created', %(at)s, %(payload)s, 'bench' FROM p
    """
    _CONFIRM = """
        WITH p AS (
          UPDATE paymentorch_payments SET status = 'Confirmed', version = version + 1,
            updated_at = %(at)s, captured_amount = amount
          WHERE id = %(id)s AND status = 'Pending'
          RETURNING id, customer_id, currency, amount
        ), a AS (
          INSERT INTO paymentorch_audit_entries (payment_id, action, from_status, to_status,
            actor_id, at, event_id)
          SELECT id, 'confirmed', 'Pending', 'Confirmed', 'bench', %(at)s, %(event)s FROM p
        ), x AS (
          INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)
          SELECT customer_id, currency, 0 FROM p
          ON CONFLICT (customer_id, currency) DO UPDATE
            SET amount = GREATEST(e.amount - (SELECT amount FROM p), 0)
        ), j AS (
          INSERT INTO paymentorch_journal_entries (id, payment_id, kind, at)
          SELECT %(entry)s, id, 'capture', %(at)s FROM p
        ), l AS (
          INSERT INTO paymentorch_postings (entry_id, line, payment_id, account_kind, owner,
            currency, amount)
          SELECT %(entry)s, v.line, p.id, v.kind, v.owner, p.currency, v.sign * p.amount
          FROM p, (VALUES (1, 'clearing', 'manual', 1), (2, 'payable', 'default', -1))
            AS v(line, kind, owner, sign)
        )
        INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at, payload,
          actor_id)
        SELECT %(event)s, id, 'payment.confirmed', %(at)s, %(payload)s, 'bench' FROM p
    """

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        self.customers = Customers()

    async def lifecycles(self, count: int) -> None:
        async with self.pool.connection() as conn:
            for _ in range(count):
                pid, customer = uuid.uuid4(), self.customers.next()
                created = datetime.now(UTC)
                await conn.execute(
                    self._CREATE,
                    {
                        "id": pid,
                        "customer": customer,
                        "at": created,
                        "event": uuid.uuid4(),
                        "payload": Jsonb(_snapshot(pid, customer, "Pending", created, created)),
                    },
                )
                now = datetime.now(UTC)
                cur = await conn.execute(
                    self._CONFIRM,
                    {
                        "id": pid,
                        "at": now,
                        "event": uuid.uuid4(),
                        "entry": uuid.uuid4(),
                        "payload": Jsonb(_snapshot(pid, customer, "Confirmed", created, now)),
                    },
                )
                if cur.rowcount != 1:
                    raise RuntimeError("not pending")


# -- orm: SQLAlchemy ORM, a Session per operation, version column ------------------------


class PaymentRow:
    """A payment as the ORM maps it."""

    id: uuid.UUID
    customer_id: str
    amount: Decimal
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    captured_amount: Decimal


class AuditRow:
    """An audit entry as the ORM maps it."""


class OutboxRow:
    """An outbox event as the ORM maps it."""


class ExposureRow:
    """A customer's exposure as the ORM maps it."""

    amount: Decimal


class EntryRow:
    """A journal entry as the ORM maps it."""


class PostingRow:
    """A journal line as the ORM maps it."""


_registry = orm.registry()
_registry.map_imperatively(
    PaymentRow,
    schema.payments,
    properties={"meta": schema.payments.c.metadata},
    version_id_col=schema.payments.c.version,
)
_registry.map_imperatively(AuditRow, schema.audit_entries)
_registry.map_imperatively(OutboxRow, schema.outbox)
_registry.map_imperatively(ExposureRow, schema.exposure)
_registry.map_imperatively(EntryRow, schema.journal_entries)
_registry.map_imperatively(PostingRow, schema.postings)


class Orm:
    """SQLAlchemy ORM (sync): a Session per operation, optimistic version column."""

    name = "orm"

    def __init__(self, engine: sa.Engine) -> None:
        self.sessions = orm.sessionmaker(engine, expire_on_commit=False)
        self.customers = Customers()

    def lifecycles(self, count: int) -> None:
        for _ in range(count):
            pid = self._create(self.customers.next())
            self._confirm(pid)

    def _create(self, customer: str) -> uuid.UUID:
        pid, event = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
            session.add(
                PaymentRow(  # type: ignore[call-arg]
                    id=pid,
                    customer_id=customer,
                    amount=AMOUNT,
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
                    event_id=event,
                )
            )
            session.add(
                OutboxRow(  # type: ignore[call-arg]
                    event_id=event,
                    payment_id=pid,
                    type="payment.created",
                    occurred_at=now,
                    payload=_snapshot(pid, customer, "Pending", now, now),
                    actor_id="bench",
                )
            )
            _move_exposure(session, customer, AMOUNT)
        return pid

    def _confirm(self, pid: uuid.UUID) -> None:
        now, event, entry = datetime.now(UTC), uuid.uuid4(), uuid.uuid4()
        with self.sessions.begin() as session:
            payment = session.get(PaymentRow, pid)
            if payment is None or payment.status != "Pending":
                raise RuntimeError("not pending")
            payment.status = "Confirmed"
            payment.updated_at = now
            payment.captured_amount = payment.amount
            customer = payment.customer_id
            session.add(
                AuditRow(  # type: ignore[call-arg]
                    payment_id=pid,
                    action="confirmed",
                    from_status="Pending",
                    to_status="Confirmed",
                    actor_id="bench",
                    at=now,
                    event_id=event,
                )
            )
            session.add(
                OutboxRow(  # type: ignore[call-arg]
                    event_id=event,
                    payment_id=pid,
                    type="payment.confirmed",
                    occurred_at=now,
                    payload=_snapshot(pid, customer, "Confirmed", payment.created_at, now),
                    actor_id="bench",
                )
            )
            _move_exposure(session, customer, -payment.amount)
            session.add(
                EntryRow(id=entry, payment_id=pid, kind="capture", at=now)  # type: ignore[call-arg]
            )
            session.add_all(
                PostingRow(  # type: ignore[call-arg]
                    entry_id=entry,
                    line=line,
                    payment_id=pid,
                    account_kind=kind,
                    owner=owner,
                    currency="USD",
                    amount=sign * payment.amount,
                )
                for line, kind, owner, sign in _POSTINGS
            )


def _move_exposure(session: orm.Session, customer: str, delta: Decimal) -> None:
    """The customer's exposure row, locked and moved (created at the first payment)."""
    row = session.get(ExposureRow, (customer, "USD"), with_for_update=True)
    if row is None:
        session.add(
            ExposureRow(customer_id=customer, currency="USD", amount=max(Decimal(0), delta))  # type: ignore[call-arg]
        )
    else:
        row.amount = max(Decimal(0), row.amount + delta)


# -- sqlite3: the standard library, WAL, synchronous=NORMAL ------------------------------


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _compact(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


_SQLITE_AUDIT = (
    "INSERT INTO paymentorch_audit_entries (payment_id, action, from_status, to_status,"
    " actor_id, at, event_id) VALUES (?, ?, ?, ?, 'bench', ?, ?)"
)
_SQLITE_EVENT = (
    "INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at, payload,"
    " actor_id) VALUES (?, ?, ?, ?, ?, 'bench')"
)


class Sqlite3:
    """Hand-written stdlib sqlite3: BEGIN IMMEDIATE / a statement per row / COMMIT per step."""

    name = "sqlite3"

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()
        self.connections: list[sqlite3.Connection] = []
        self.customers = Customers()

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
            pid, customer = uuid.uuid4(), self.customers.next()
            created = self._create(conn, pid, customer)
            self._confirm(conn, pid, customer, created)

    @staticmethod
    def _create(conn: sqlite3.Connection, pid: uuid.UUID, customer: str) -> datetime:
        now, event = datetime.now(UTC), uuid.uuid4().hex
        snapshot = _compact(_snapshot(pid, customer, "Pending", now, now))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO paymentorch_payments (id, customer_id, amount, currency, status,"
            " created_at, updated_at, version, metadata)"
            " VALUES (?, ?, ?, 'USD', 'Pending', ?, ?, 1, '{}')",
            (pid.hex, customer, str(AMOUNT), _stamp(now), _stamp(now)),
        )
        conn.execute(_SQLITE_AUDIT, (pid.hex, "created", None, "Pending", _stamp(now), event))
        conn.execute(_SQLITE_EVENT, (event, pid.hex, "payment.created", _stamp(now), snapshot))
        _sqlite_exposure(conn, customer, AMOUNT)
        conn.execute("COMMIT")
        return now

    @staticmethod
    def _confirm(
        conn: sqlite3.Connection, pid: uuid.UUID, customer: str, created: datetime
    ) -> None:
        now, event, entry = datetime.now(UTC), uuid.uuid4().hex, uuid.uuid4().hex
        snapshot = _compact(_snapshot(pid, customer, "Confirmed", created, now))
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "UPDATE paymentorch_payments SET status = 'Confirmed', version = version + 1,"
            " updated_at = ?, captured_amount = amount WHERE id = ? AND status = 'Pending'",
            (_stamp(now), pid.hex),
        )
        if cur.rowcount != 1:
            conn.execute("ROLLBACK")
            raise RuntimeError("not pending")
        conn.execute(
            _SQLITE_AUDIT, (pid.hex, "confirmed", "Pending", "Confirmed", _stamp(now), event)
        )
        conn.execute(_SQLITE_EVENT, (event, pid.hex, "payment.confirmed", _stamp(now), snapshot))
        _sqlite_exposure(conn, customer, -AMOUNT)
        conn.execute(
            "INSERT INTO paymentorch_journal_entries (id, payment_id, kind, at)"
            " VALUES (?, ?, 'capture', ?)",
            (entry, pid.hex, _stamp(now)),
        )
        conn.executemany(
            "INSERT INTO paymentorch_postings (entry_id, line, payment_id, account_kind, owner,"
            " currency, amount) VALUES (?, ?, ?, ?, ?, 'USD', ?)",
            [
                (entry, line, pid.hex, kind, owner, str(sign * AMOUNT))
                for line, kind, owner, sign in _POSTINGS
            ],
        )
        conn.execute("COMMIT")

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


def _sqlite_exposure(conn: sqlite3.Connection, customer: str, delta: Decimal) -> None:
    """Move the customer's exposure by ``delta`` in exact decimals (SQLite keeps money as
    text: its own arithmetic would go through floats)."""
    row = conn.execute(
        "SELECT amount FROM paymentorch_exposure WHERE customer_id = ? AND currency = 'USD'",
        (customer,),
    ).fetchone()
    amount = max(Decimal(0), (Decimal(row[0]) if row else Decimal(0)) + delta)
    conn.execute(
        "INSERT INTO paymentorch_exposure (customer_id, currency, amount) VALUES (?, 'USD', ?)"
        " ON CONFLICT (customer_id, currency) DO UPDATE SET amount = excluded.amount",
        (customer, str(amount)),
    )


# -- dicts: a hand-written in-memory store, as a team writes its own test fake ------------

_ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class DictPayment:
    """A payment as the hand-written fake holds it: every field its snapshot shows."""

    id: uuid.UUID
    customer_id: str
    amount: Decimal
    currency: str
    status: str
    created_at: datetime
    updated_at: datetime
    version: int
    captured_amount: Decimal
    refunded_amount: Decimal = _ZERO
    failure_reason: str | None = None
    idempotency_key: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    has_plan: bool = False

    def snapshot(self) -> dict[str, Any]:
        """An event's payload: what ``Payment.to_dict()`` gives for it."""
        return {
            "id": str(self.id),
            "customer_id": self.customer_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
            "failure_reason": self.failure_reason,
            "idempotency_key": self.idempotency_key,
            "metadata": dict(self.metadata),
            "captured_amount": str(self.captured_amount.quantize(AMOUNT)),
            "refunded_amount": str(self.refunded_amount.quantize(AMOUNT)),
            "has_plan": self.has_plan,
        }


class Dicts:
    """The ceiling for the in-memory store: dicts and lists under one lock, async like the
    service, holding the records paymentorch's memory store holds (the payment, indexed
    by creation and by customer; its audit entries; each step's outbox event with the
    payment as written, its payload built when read, as the store's are; the customer's
    exposure; the capture's journal entry with its two lines). It leaves out what else the
    store does: input checks, roles, idempotency keys, the cache, telemetry and spans,
    counts by status, account balances, checks of event ids and the outbox's sequence."""

    name = "dicts"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.payments: dict[uuid.UUID, DictPayment] = {}
        self.order: list[uuid.UUID] = []
        self.by_customer: dict[str, list[uuid.UUID]] = {}
        self.audit: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
        self.outbox: list[tuple[Any, ...]] = []
        self.exposure: dict[tuple[str, str], Decimal] = {}
        self.journal: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
        self.customers = Customers()

    async def lifecycles(self, count: int) -> None:
        for _ in range(count):
            pid = await self.create(self.customers.next())
            await self.confirm(pid)

    async def create(self, customer: str) -> uuid.UUID:
        now, event = datetime.now(UTC), uuid.uuid4()
        p = DictPayment(uuid.uuid4(), customer, AMOUNT, "USD", "Pending", now, now, 1, _ZERO)
        with self.lock:
            self.payments[p.id] = p
            self.order.append(p.id)
            self.by_customer.setdefault(customer, []).append(p.id)
            self.audit[p.id] = [("created", None, "Pending", "bench", now, event)]
            self.outbox.append((event, p.id, "payment.created", now, p, "bench"))
            key = (customer, p.currency)
            self.exposure[key] = self.exposure.get(key, _ZERO) + p.amount
        return p.id

    async def confirm(self, pid: uuid.UUID) -> None:
        now, event, entry = datetime.now(UTC), uuid.uuid4(), uuid.uuid4()
        with self.lock:
            old = self.payments[pid]
            if old.status != "Pending":
                raise RuntimeError("not pending")
            p = DictPayment(
                pid, old.customer_id, old.amount, old.currency, "Confirmed", old.created_at,
                now, old.version + 1, old.amount,
            )  # fmt: skip
            self.payments[pid] = p
            self.audit[pid].append(("confirmed", "Pending", "Confirmed", "bench", now, event))
            self.outbox.append((event, pid, "payment.confirmed", now, p, "bench"))
            key = (p.customer_id, p.currency)
            self.exposure[key] = max(self.exposure[key] - p.amount, _ZERO)
            lines = [(k, owner, p.currency, sign * p.amount) for _, k, owner, sign in _POSTINGS]
            self.journal[pid] = [(entry, "capture", now, lines)]
