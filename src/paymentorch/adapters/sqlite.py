"""The SQLite store: stdlib sqlite3, each operation one function call, often zero hops.

Each operation (a whole ``BEGIN IMMEDIATE ... COMMIT`` transaction for writes) runs as
one function. With ``durability="normal"``, work on a single payment (create, change,
read, its audit trail) first runs right on the event loop with a busy timeout of zero: a
WAL commit without a sync takes tens of microseconds, less than a hop to another thread.
Work whose size the caller chooses (batches, listings, counts, the outbox) always runs on
the connection's private thread, so that it never holds the event loop. When another
connection holds the write lock, an inline call moves to that thread too, where it waits
out the busy timeout: one hop. So a create or a transition costs no hop uncontended and
one hop contended, where a driver that hops once per statement (aiosqlite) would cost
five. With
``durability="full"`` every commit syncs to disk, so every call takes the hop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from uuid import UUID

from paymentorch.adapters._sql import (
    AUDIT_COLUMNS,
    OUTBOX_COLUMNS,
    OUTBOX_READ,
    PAYMENT_COLUMNS,
    PAYMENT_INSERT_COLUMNS,
    audit_from_row,
    dumps,
    key_scope,
    message_from_row,
    payment_from_row,
)
from paymentorch.domain import (
    AuditEntry,
    Change,
    FieldError,
    IdempotencyConflict,
    Payment,
    PaymentStatus,
    StoreError,
    StoreUnavailable,
    ValidationError,
)
from paymentorch.ports import Keyset, OutboxMessage, OutboxStats

T = TypeVar("T")
LOOP_BOUND: Final = False  # usable from any thread's event loop (see SyncPaymentService)
Durability = Literal["normal", "full"]

_INSERT_PAYMENT: Final = (
    f"INSERT INTO paymentorch_payments ({PAYMENT_INSERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_AUDIT: Final = (
    f"INSERT INTO paymentorch_audit_entries ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
)
_INSERT_EVENT: Final = f"INSERT INTO paymentorch_outbox ({OUTBOX_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
_UPDATE: Final = (
    "UPDATE paymentorch_payments SET status = ?, version = ?, updated_at = ?,"
    " failure_reason = ? WHERE id = ? AND status = ?"
)
_SELECT: Final = f"SELECT {PAYMENT_COLUMNS} FROM paymentorch_payments"
_CLAIM: Final = f"""
UPDATE paymentorch_outbox SET lease_until = ?
WHERE seq IN (
  SELECT o.seq FROM paymentorch_outbox o
  WHERE o.state = 'pending'
    AND (o.available_at IS NULL OR o.available_at <= ?)
    AND (o.lease_until IS NULL OR o.lease_until <= ?)
    AND NOT EXISTS (
      SELECT 1 FROM paymentorch_outbox e
      WHERE e.payment_id = o.payment_id AND e.state = 'pending' AND e.seq < o.seq)
  ORDER BY o.seq LIMIT ?)
RETURNING {OUTBOX_READ}, seq
"""


def _time(value: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _uuid(value: str) -> UUID:
    return UUID(hex=value)


def _payment(row: tuple[Any, ...]) -> Payment:
    return payment_from_row(row, uuid=_uuid, time=_parse_time, metadata=json.loads)


def _payment_params(change: Change) -> tuple[Any, ...]:
    payment = change.payment
    return (
        payment.id.hex,
        payment.customer_id,
        str(payment.amount),
        payment.currency,
        payment.status.value,
        _time(payment.created_at),
        _time(payment.updated_at),
        payment.version,
        payment.failure_reason,
        payment.idempotency_key,
        dumps(payment.metadata),
        key_scope(change),
    )


def _record(conn: sqlite3.Connection, change: Change) -> None:
    audit, event = change.audit, change.event
    conn.execute(
        _INSERT_AUDIT,
        (
            audit.payment_id.hex,
            audit.action,
            None if audit.from_status is None else audit.from_status.value,
            audit.to_status.value,
            audit.actor_id,
            _time(audit.at),
            audit.reason,
            audit.correlation_id,
        ),
    )
    conn.execute(
        _INSERT_EVENT,
        (
            event.id.hex,
            event.payment_id.hex,
            event.type,
            _time(event.occurred_at),
            dumps(event.payment),
            event.actor_id,
            event.correlation_id,
        ),
    )


def _transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class SQLitePaymentStore:
    """Payments in one SQLite file, shareable by several processes.

    ``durability="normal"`` (the default) is ``synchronous=NORMAL``: a commit survives a
    crash of the process, and the last commits before a power loss may be lost.
    ``durability="full"`` syncs every commit to disk.
    """

    backend = "sqlite"

    def __init__(
        self,
        conn: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        *,
        busy_timeout: float = 30.0,
        inline: bool = True,
    ) -> None:
        self._conn = conn
        self._executor = executor
        self._busy_ms = round(busy_timeout * 1000)
        self._inline = inline
        # One user of the connection at a time, from any thread or event loop: held only
        # around a synchronous call, never across an await.
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        create_schema: bool = True,
    ) -> SQLitePaymentStore:
        """Open (and by default create or upgrade) the database at ``path``."""
        if durability not in ("normal", "full"):
            raise ValidationError(
                [FieldError("durability", "must be 'normal' or 'full'", "choice")]
            )
        in_memory = path == ":memory:"
        if create_schema and not in_memory:
            from paymentorch._migrate import migrate  # noqa: PLC0415 - Alembic only when asked

            await migrate(f"sqlite:///{path}")
        executor = ThreadPoolExecutor(1, thread_name_prefix="paymentorch-sqlite")
        inline = durability == "normal"

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={durability.upper()}")
                if in_memory and create_schema:
                    # A private database lives and dies with its one connection: the
                    # schema must be made on this very connection.
                    from paymentorch._migrate import migrate_connection  # noqa: PLC0415

                    migrate_connection(conn)
                conn.execute("SELECT 1 FROM paymentorch_payments LIMIT 0")
                if inline:
                    conn.execute("PRAGMA busy_timeout=0")  # never wait on the event loop
            except BaseException:
                conn.close()
                raise
            return conn

        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            if "no such table" in str(exc):
                raise StoreError(
                    f"the paymentorch schema is missing in {path!r}: open it with "
                    "create_schema=True, or run `paymentorch migrate URL` first"
                ) from exc
            raise StoreUnavailable(f"cannot open SQLite database {path!r}: {exc}") from exc
        return cls(conn, executor, busy_timeout=busy_timeout, inline=inline)

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool = False) -> T:
        """Run ``fn`` with the connection: on the loop if ``inline`` and it need not wait,
        else on the connection's thread. Only bounded single-payment work is ``inline``.

        Driver errors stop here.
        """
        if self._closed:
            raise StoreUnavailable("the SQLite store is closed")
        try:
            if inline and self._inline and self._lock.acquire(blocking=False):
                try:
                    return fn(self._conn)
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                finally:
                    self._lock.release()
            # The file or the connection is busy: wait for it on the private thread.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._patiently, fn)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"SQLite refused the write: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite failed: {exc}") from exc

    def _patiently(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if not self._inline:
                return fn(self._conn)
            self._conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            try:
                return fn(self._conn)
            finally:
                self._conn.execute("PRAGMA busy_timeout=0")

    def _close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- writes -----------------------------------------------------------------

    async def add(self, change: Change) -> Payment | None:
        """Insert, or return the payment holding the idempotency key (one hop)."""
        payment = change.payment

        def body(conn: sqlite3.Connection) -> Payment | None:
            cursor = conn.execute(
                _INSERT_PAYMENT + " ON CONFLICT (idempotency_scope, idempotency_key) DO NOTHING",
                _payment_params(change),
            )
            if cursor.rowcount == 1:
                _record(conn, change)
                return None
            row = conn.execute(
                _SELECT + " WHERE idempotency_scope = ? AND idempotency_key = ?",
                (key_scope(change), payment.idempotency_key),
            ).fetchone()
            if row is None:  # pragma: no cover - the conflict was on the id, not the key
                raise StoreError("a payment with this id exists already")
            return _payment(row)

        return await self._run(lambda conn: _transaction(conn, body), inline=True)

    async def add_many(self, changes: Sequence[Change]) -> None:
        """Insert all in one transaction (one hop)."""

        def body(conn: sqlite3.Connection) -> None:
            for change in changes:
                key = change.payment.idempotency_key
                if (
                    key is not None
                    and conn.execute(
                        "SELECT 1 FROM paymentorch_payments"
                        " WHERE idempotency_scope = ? AND idempotency_key = ?",
                        (key_scope(change), key),
                    ).fetchone()
                ):
                    raise IdempotencyConflict(key, "already used by another payment")
            conn.executemany(_INSERT_PAYMENT, [_payment_params(c) for c in changes])
            for change in changes:
                _record(conn, change)

        await self._run(lambda conn: _transaction(conn, body))

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        """The guarded update with its entry and event, in one transaction."""
        return bool(await self._apply([change], expected, inline=True))

    async def apply_many(self, changes: Sequence[Change], *, expected: PaymentStatus) -> set[UUID]:
        """Guarded updates for many payments in one transaction (one hop)."""
        return await self._apply(changes, expected, inline=False)

    async def _apply(
        self, changes: Sequence[Change], expected: PaymentStatus, *, inline: bool
    ) -> set[UUID]:

        def body(conn: sqlite3.Connection) -> set[UUID]:
            applied: set[UUID] = set()
            for change in changes:
                new = change.payment
                cursor = conn.execute(
                    _UPDATE,
                    (
                        new.status.value,
                        new.version,
                        _time(new.updated_at),
                        new.failure_reason,
                        new.id.hex,
                        expected.value,
                    ),
                )
                if cursor.rowcount == 1:
                    _record(conn, change)
                    applied.add(new.id)
            return applied

        return await self._run(lambda conn: _transaction(conn, body), inline=inline)

    async def purge_idempotency_keys(self, created_before: datetime) -> int:
        """Release keys of payments created before ``created_before``."""

        def body(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE paymentorch_payments SET idempotency_key = NULL, idempotency_scope = NULL"
                " WHERE idempotency_key IS NOT NULL AND created_at < ?",
                (_time(created_before),),
            ).rowcount

        return await self._run(lambda conn: _transaction(conn, body))

    # -- reads ------------------------------------------------------------------

    async def get(self, payment_id: UUID) -> Payment | None:
        """The payment, or None."""
        row = await self._run(
            lambda conn: conn.execute(_SELECT + " WHERE id = ?", (payment_id.hex,)).fetchone(),
            inline=True,
        )
        return None if row is None else _payment(row)

    async def get_many(self, payment_ids: Sequence[UUID]) -> dict[UUID, Payment]:
        """The payments that exist among ``payment_ids``."""

        def body(conn: sqlite3.Connection) -> list[Any]:
            rows: list[Any] = []
            for start in range(0, len(payment_ids), 500):
                chunk = [i.hex for i in payment_ids[start : start + 500]]
                rows += conn.execute(
                    _SELECT + f" WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
            return rows

        payments = [_payment(r) for r in await self._run(body)]
        return {p.id: p for p in payments}

    async def list_payments(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        limit: int,
        after: Keyset | None,
    ) -> list[Payment]:
        """Newest first, strictly after ``after``, from the matching index."""
        where, params = _filters(status, customer_id)
        if after is not None:
            where.append("(created_at, id) < (?, ?)")
            params += [_time(after[0]), after[1].hex]
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [_payment(r) for r in rows]

    async def count(self, *, status: PaymentStatus | None, customer_id: str | None) -> int:
        """How many payments match."""
        where, params = _filters(status, customer_id)
        sql = "SELECT count(*) FROM paymentorch_payments" + (
            " WHERE " + " AND ".join(where) if where else ""
        )
        row = await self._run(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])

    async def audit_trail(self, payment_id: UUID) -> list[AuditEntry]:
        """Entries for one payment, oldest first."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM paymentorch_audit_entries"
                " WHERE payment_id = ? ORDER BY seq",
                (payment_id.hex,),
            ).fetchall(),
            inline=True,
        )
        return [audit_from_row(r, uuid=_uuid, time=_parse_time) for r in rows]

    # -- outbox -----------------------------------------------------------------

    async def claim_events(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[OutboxMessage]:
        """Lease due events, each payment's head event only, oldest first."""
        stamp = _time(now)
        rows = await self._run(
            lambda conn: _transaction(
                conn,
                lambda c: c.execute(_CLAIM, (_time(lease_until), stamp, stamp, limit)).fetchall(),
            )
        )
        rows.sort(key=lambda r: r[-1])
        return [_message(r) for r in rows]

    async def mark_delivered(self, event_ids: Sequence[UUID]) -> None:
        """Delete delivered events."""

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "DELETE FROM paymentorch_outbox WHERE event_id = ?", [(i.hex,) for i in event_ids]
            )

        await self._run(lambda conn: _transaction(conn, body))

    async def mark_failed(
        self, event_ids: Sequence[UUID], *, error: str, retry_at: datetime | None
    ) -> None:
        """Count a failed attempt; schedule a retry, or park when ``retry_at`` is None."""
        state = "pending" if retry_at is not None else "parked"
        when = None if retry_at is None else _time(retry_at)

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE paymentorch_outbox SET attempts = attempts + 1, last_error = ?,"
                " available_at = ?, lease_until = NULL, state = ?"
                " WHERE event_id = ? AND state = 'pending'",
                [(error[:1000], when, state, i.hex) for i in event_ids],
            )

        await self._run(lambda conn: _transaction(conn, body))

    async def outbox_stats(self) -> OutboxStats:
        """Pending and parked counts, and when the oldest pending event occurred."""
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT count(*) FILTER (WHERE state = 'pending'),"
                " min(occurred_at) FILTER (WHERE state = 'pending'),"
                " count(*) FILTER (WHERE state = 'parked') FROM paymentorch_outbox"
            ).fetchone()
        )
        return OutboxStats(
            pending=row[0], oldest_pending_at=row[1] and _parse_time(row[1]), parked=row[2]
        )

    async def parked_events(self, limit: int = 100) -> list[OutboxMessage]:
        """Parked events, oldest first."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {OUTBOX_READ} FROM paymentorch_outbox WHERE state = 'parked'"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [_message(r) for r in rows]

    async def requeue_parked(self, event_ids: Sequence[UUID] | None = None) -> int:
        """Make parked events pending again with a fresh attempt count."""
        sql = (
            "UPDATE paymentorch_outbox SET state = 'pending', attempts = 0,"
            " available_at = NULL, lease_until = NULL WHERE state = 'parked'"
        )

        def body(conn: sqlite3.Connection) -> int:
            if event_ids is None:
                return conn.execute(sql).rowcount
            return sum(
                conn.execute(sql + " AND event_id = ?", (i.hex,)).rowcount for i in event_ids
            )

        return await self._run(lambda conn: _transaction(conn, body))

    # -- lifecycle --------------------------------------------------------------

    async def ping(self) -> None:
        """One round trip to the database file."""
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone(), inline=True)

    async def aclose(self) -> None:
        """Close the connection and stop its thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close)
        except RuntimeError:  # the executor is shut already: the interpreter is exiting
            self._close()
        self._executor.shutdown(wait=True)


def _filters(status: PaymentStatus | None, customer_id: str | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status.value)
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    return where, params


def _message(row: tuple[Any, ...]) -> OutboxMessage:
    return message_from_row(row, uuid=_uuid, time=_parse_time, payload=json.loads)


def database_path(url: str) -> str:
    """The file path in ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise ValidationError(
            [FieldError("url", "SQLite URLs look like sqlite:///payments.db", "url")]
        )
    path = rest[1:].split("?", 1)[0]
    return path if path == ":memory:" else str(Path(path))


async def open_store(
    url: str,
    *,
    durability: Durability = "normal",
    busy_timeout: float = 30.0,
    create_schema: bool = True,
) -> SQLitePaymentStore:
    """Open the SQLite store that ``url`` names."""
    return await SQLitePaymentStore.open(
        database_path(url),
        durability=durability,
        busy_timeout=busy_timeout,
        create_schema=create_schema,
    )
