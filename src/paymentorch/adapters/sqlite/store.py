"""The SQLite store: the stdlib ``sqlite3``, each operation one transaction in one call.

The operations are written once, here and in ``outbox``; ``SQLiteConnection`` runs them
(on the event loop or the connection's thread, see ``connection``), and the blocking
twin's store is generated from these modules with ``SyncSQLiteConnection`` in its place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from paymentorch.adapters._kept import KeptAsWritten
from paymentorch.adapters._sql import (
    AUDIT_COLUMNS,
    OPERATION_COLUMNS,
    REQUEST_READ,
    STATUS,
    SUMMARY_DIGITS,
    audit_from_row,
    exposure_sql,
    installments_due_sql,
    key_scope,
    plans_by_age_sql,
    plans_due_sql,
    plans_to_remind_sql,
    request_from_row,
)
from paymentorch.adapters.sqlite.connection import Durability
from paymentorch.adapters.sqlite.ledger import SQLiteLedger
from paymentorch.adapters.sqlite.statements import (
    CLAIM_OPERATIONS,
    INSERT_PAYMENT,
    SELECT,
    SETTLE,
    database_path,
    hex_uuid,
    insert_records,
    parse_time,
    payment_params,
    read_plan,
    row_operation,
    row_payment,
    scaled,
    settle_params,
    snapshot,
    time_text,
    transaction,
    where_filters,
    write_change,
)
from paymentorch.domain import (
    AuditEntry,
    Change,
    IdempotencyConflict,
    Operation,
    OperationStatus,
    Payment,
    PaymentStatus,
    StoreError,
)
from paymentorch.domain.credit import exposure_changes
from paymentorch.domain.orchestration import IN_DOUBT_ERROR
from paymentorch.domain.plans import Plan
from paymentorch.domain.records import check_bulk
from paymentorch.domain.requests import KeyedChange
from paymentorch.domain.results import SummaryRow
from paymentorch.domain.transitions import Stepped, Transition
from paymentorch.ports import Keyset

FRESH_PAYMENTS = 1_000
"""How many of the payments it created a store keeps as it wrote them, until their first
transition (``transition``): a checkout's confirmation then reads nothing first."""


class SQLitePaymentStore(SQLiteLedger):
    """Payments in one SQLite file, shareable by several processes.

    ``durability="normal"`` (the default) is ``synchronous=NORMAL``: a commit survives a
    crash of the process, and the last commits before a power loss may be lost.
    ``durability="full"`` syncs every commit to disk.
    """

    backend = "sqlite"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The newest payments it created, as written, until their first transition
        # decides on them (``transition``).
        self._fresh: KeptAsWritten[None] = KeptAsWritten(FRESH_PAYMENTS)

    # -- writes -----------------------------------------------------------------

    async def add(self, change: Change) -> Payment | None:
        """Insert, or return the payment holding the idempotency key (one hop)."""
        payment = change.payment

        def body(conn: sqlite3.Connection) -> Payment | None:
            cursor = conn.execute(
                INSERT_PAYMENT + " ON CONFLICT (idempotency_scope, idempotency_key) DO NOTHING",
                payment_params(change),
            )
            if cursor.rowcount == 1:
                insert_records(conn, change)
                return None
            row = conn.execute(
                SELECT + " WHERE idempotency_scope = ? AND idempotency_key = ?",
                (key_scope(change), payment.idempotency_key),
            ).fetchone()
            if row is None:  # pragma: no cover - the conflict was on the id, not the key
                raise StoreError("a payment with this id exists already")
            return row_payment(row)

        holder = await self._run(lambda conn: transaction(conn, body), inline=True)
        if holder is None:
            self._fresh.keep(payment, None)
        return holder

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
            conn.executemany(INSERT_PAYMENT, [payment_params(c) for c in changes])
            for change in changes:
                insert_records(conn, change)

        await self._run(lambda conn: transaction(conn, body))

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        """The guarded update with its entry and event, in one transaction."""
        return bool(await self._apply([change], expected, inline=True))

    async def transition(self, move: Transition) -> Stepped:
        """Decide ``move`` on the payment as it is and write its change, in one
        transaction. A payment this store created is decided on as it wrote it, the first
        time, with no read (the write is guarded by its version: if it changed meanwhile,
        the row is read in the same transaction); any other is read in the transaction
        first. When it writes nothing it says what it found, with its plan read in the
        same transaction."""
        kept = self._fresh.take(move.payment_id, move.at)
        fresh = None if kept is None or not move.applies_to(kept[0]) else kept[0]

        def decided(conn: sqlite3.Connection, payment: Payment) -> Stepped | None:
            change = move.change(payment)
            if not write_change(conn, change, payment.status):
                return None
            return Stepped(written=change.payment, operation=change.operation)

        def body(conn: sqlite3.Connection) -> Stepped:
            if fresh is not None and (written := decided(conn, fresh)) is not None:
                return written
            row = conn.execute(SELECT + " WHERE id = ?", (move.payment_id.hex,)).fetchone()
            old = None if row is None else row_payment(row)
            if old is None:
                return Stepped()
            if not move.applies_to(old):
                plan = read_plan(conn, old.id) if old.has_plan else None
                return Stepped(found=old, plan=plan)
            return decided(conn, old) or Stepped()

        return await self._run(lambda conn: transaction(conn, body), inline=True)

    async def apply_many(self, changes: Sequence[Change], *, expected: PaymentStatus) -> set[UUID]:
        """Guarded updates for many payments in one transaction (one hop)."""
        check_bulk(changes)
        return await self._apply(changes, expected, inline=False)

    async def _apply(
        self, changes: Sequence[Change], expected: PaymentStatus, *, inline: bool
    ) -> set[UUID]:

        def body(conn: sqlite3.Connection) -> set[UUID]:
            applied: set[UUID] = set()
            for change in changes:
                if write_change(conn, change, expected):
                    applied.add(change.payment.id)
            return applied

        return await self._run(lambda conn: transaction(conn, body), inline=inline)

    async def purge_idempotency_keys(self, created_before: datetime) -> int:
        """Release keys of payments created before ``created_before``."""
        self._fresh.forget()

        def body(conn: sqlite3.Connection) -> int:
            before = (time_text(created_before),)
            return (
                conn.execute(
                    "UPDATE paymentorch_payments SET idempotency_key = NULL,"
                    " idempotency_scope = NULL WHERE idempotency_key IS NOT NULL"
                    " AND created_at < ?",
                    before,
                ).rowcount
                + conn.execute(
                    "DELETE FROM paymentorch_request_keys WHERE created_at < ?", before
                ).rowcount
            )

        return await self._run(lambda conn: transaction(conn, body))

    # -- reads ------------------------------------------------------------------

    async def get(self, payment_id: UUID) -> Payment | None:
        """The payment, or None."""
        row = await self._run(
            lambda conn: conn.execute(SELECT + " WHERE id = ?", (payment_id.hex,)).fetchone(),
            inline=True,
        )
        return None if row is None else row_payment(row)

    async def get_many(self, payment_ids: Sequence[UUID]) -> dict[UUID, Payment]:
        """The payments that exist among ``payment_ids``."""

        def body(conn: sqlite3.Connection) -> list[Any]:
            rows: list[Any] = []
            for start in range(0, len(payment_ids), 500):
                chunk = [i.hex for i in payment_ids[start : start + 500]]
                rows += conn.execute(
                    SELECT + f" WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
            return rows

        payments = [row_payment(r) for r in await self._run(body)]
        return {p.id: p for p in payments}

    async def list_payments(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        limit: int,
        after: Keyset | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[Payment]:
        """Newest first, strictly after ``after``, from the matching index."""
        where, params = where_filters(status, customer_id, created_from, created_to)
        if after is not None:
            where.append("(created_at, id) < (?, ?)")
            params += [time_text(after[0]), after[1].hex]
        sql = SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [row_payment(r) for r in rows]

    async def count(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        """How many payments match."""
        where, params = where_filters(status, customer_id, created_from, created_to)
        sql = "SELECT count(*) FROM paymentorch_payments" + (
            " WHERE " + " AND ".join(where) if where else ""
        )
        row = await self._run(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])

    async def summarize(
        self,
        *,
        customer_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
    ) -> list[SummaryRow]:
        """Grouped by day created, status and currency; amounts summed exactly."""
        where, params = where_filters(None, customer_id, created_from, created_to)
        # Amounts are decimal text, which SQLite would add as floats: add exact integers.
        sql = (
            "SELECT substr(created_at, 1, 10), status, currency, count(*),"
            f" sum({scaled('amount')})"
            " FROM paymentorch_payments"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " GROUP BY 1, 2, 3"
        )
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [
            SummaryRow(
                date.fromisoformat(day),
                STATUS[status],
                currency,
                count,
                Decimal(total).scaleb(-SUMMARY_DIGITS),
            )
            for day, status, currency, count, total in rows
        ]

    async def operations(self, payment_id: UUID) -> list[Operation]:
        """A payment's operations, oldest first."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations"
                " WHERE payment_id = ? ORDER BY created_at, id",
                (payment_id.hex,),
            ).fetchall(),
            inline=True,
        )
        return [row_operation(r) for r in rows]

    async def find_operation(self, payment_id: UUID, *, scope: str, key: str) -> Operation | None:
        """The operation of ``payment_id`` that ``scope`` asked for with ``key``."""
        row = await self._run(
            lambda conn: conn.execute(
                f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations WHERE payment_id = ?"
                " AND idempotency_scope = ? AND idempotency_key = ?",
                (payment_id.hex, scope, key),
            ).fetchone(),
            inline=True,
        )
        return None if row is None else row_operation(row)

    async def find_request(self, scope: str, key: str) -> KeyedChange | None:
        """The transition the actor ``scope`` made with ``key``, or None."""
        row = await self._run(
            lambda conn: conn.execute(REQUEST_READ.format("?"), (scope, key)).fetchone(),
            inline=True,
        )
        return None if row is None else request_from_row(row)

    async def get_operation(self, operation_id: UUID) -> Operation | None:
        """The operation, or None."""
        row = await self._run(
            lambda conn: conn.execute(
                f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations WHERE id = ?",
                (operation_id.hex,),
            ).fetchone(),
            inline=True,
        )
        return None if row is None else row_operation(row)

    async def claim_operations(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[Operation]:
        """Lease due pending or unknown operations, soonest first."""
        stamp = time_text(now)
        rows = await self._run(
            lambda conn: transaction(
                conn,
                lambda c: c.execute(
                    CLAIM_OPERATIONS,
                    (time_text(lease_until), IN_DOUBT_ERROR, stamp, stamp, limit),
                ).fetchall(),
            )
        )
        found = [row_operation(r) for r in rows]
        return sorted(found, key=lambda op: (op.due_at or now, op.id))

    async def settle(
        self, previous: Operation, operation: Operation, change: Change | None = None
    ) -> bool:
        """The operation's new state and its payment's change, in one transaction."""

        def body(conn: sqlite3.Connection) -> bool:
            if conn.execute(SETTLE, settle_params(previous, operation)).rowcount != 1:
                return False
            if change is not None:
                expected = change.audit.from_status
                if expected is None or not write_change(conn, change, expected):
                    raise _Lost
            return True

        try:
            return await self._run(lambda conn: transaction(conn, body), inline=True)
        except _Lost:
            return False

    async def plan(self, payment_id: UUID) -> Plan | None:
        """The payment's installment plan, or None."""
        return await self._run(lambda conn: snapshot(conn, lambda c: read_plan(c, payment_id)))

    async def get_with_plan(self, payment_id: UUID) -> tuple[Payment, Plan | None] | None:
        """The payment and its plan, as of one moment (one read transaction), or None."""

        def body(conn: sqlite3.Connection) -> tuple[Payment, Plan | None] | None:
            row = conn.execute(SELECT + " WHERE id = ?", (payment_id.hex,)).fetchone()
            if row is None:
                return None
            payment = row_payment(row)
            return payment, read_plan(conn, payment_id) if payment.has_plan else None

        return await self._run(lambda conn: snapshot(conn, body), inline=True)

    async def plans_due(self, late_before: datetime, repeat_before: datetime) -> list[UUID]:
        """Payments whose plan has an installment late, or perhaps owing a repeat fee."""
        rows = await self._run(
            lambda conn: conn.execute(
                plans_due_sql("?"), (time_text(late_before), time_text(repeat_before))
            ).fetchall()
        )
        return [UUID(hex=r[0]) for r in rows]

    async def plans_by_age(
        self, *, after: Keyset | None, limit: int
    ) -> list[tuple[UUID, datetime]]:
        """Running plans by oldest unpaid due date, then payment id, past ``after``."""
        past = () if after is None else (time_text(after[0]), after[1].hex)
        sql = plans_by_age_sql("?", after=after is not None)
        rows = await self._run(lambda conn: conn.execute(sql, (*past, limit)).fetchall())
        return [(UUID(hex=r[0]), parse_time(r[1])) for r in rows]

    async def installments_due(self, now: datetime, limit: int) -> list[tuple[UUID, int]]:
        """Unpaid installments to collect now: never tried, or a retry due."""
        at = time_text(now)
        rows = await self._run(
            lambda conn: conn.execute(installments_due_sql("?"), (at, at, limit)).fetchall()
        )
        return [(UUID(hex=r[0]), r[1]) for r in rows]

    async def plans_to_remind(
        self, now: datetime, until: datetime, smallest: timedelta
    ) -> list[UUID]:
        """Plans with an installment a reminder may be due for."""
        params = (time_text(now), time_text(until), int(smallest.total_seconds()))
        rows = await self._run(
            lambda conn: conn.execute(plans_to_remind_sql("?"), params).fetchall()
        )
        return [UUID(hex=r[0]) for r in rows]

    async def rebuild_exposure(self) -> int:
        """Recount every customer's exposure from payments and plans, in one transaction;
        return how many (customer, currency) figures were wrong."""

        def body(conn: sqlite3.Connection) -> int:
            stored = {
                (customer, currency): Decimal(amount)
                for customer, currency, amount in conn.execute(
                    "SELECT customer_id, currency, amount FROM paymentorch_exposure"
                )
            }
            wanted = {
                (customer, currency): Decimal(units).scaleb(-SUMMARY_DIGITS)
                for customer, currency, units in conn.execute(
                    exposure_sql(lambda column: f"sum({scaled(column)})")
                )
            }
            changes = exposure_changes(stored, wanted)
            conn.executemany(
                "INSERT INTO paymentorch_exposure (customer_id, currency, amount)"
                " VALUES (?, ?, ?) ON CONFLICT (customer_id, currency)"
                " DO UPDATE SET amount = excluded.amount",
                [(customer, currency, str(v)) for (customer, currency), v in changes.items()],
            )
            return len(changes)

        return await self._run(lambda conn: transaction(conn, body))

    async def exposure(self, customer_id: str, currency: str) -> Decimal:
        """The customer's exposure in ``currency``."""
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT amount FROM paymentorch_exposure WHERE customer_id = ? AND currency = ?",
                (customer_id, currency),
            ).fetchone()
        )
        return Decimal(row[0]) if row else Decimal(0)

    async def operations_with_status(
        self, status: OperationStatus, *, limit: int
    ) -> list[Operation]:
        """Operations with ``status``, oldest first."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations WHERE status = ?"
                " ORDER BY created_at, id LIMIT ?",
                (status.value, limit),
            ).fetchall()
        )
        return [row_operation(r) for r in rows]

    async def find_operation_by_reference(self, processor: str, reference: str) -> Operation | None:
        """The operation a processor knows by ``reference``, or None."""
        row = await self._run(
            lambda conn: conn.execute(
                f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations"
                " WHERE processor = ? AND reference = ?",
                (processor, reference),
            ).fetchone(),
            inline=True,
        )
        return None if row is None else row_operation(row)

    async def record_callback(
        self,
        processor: str,
        event_id: str,
        *,
        operation_id: UUID | None,
        outcome: str,
        received_at: datetime,
    ) -> bool:
        """Keep the event id in the inbox; False when it was there already."""
        params = (
            processor,
            event_id,
            None if operation_id is None else operation_id.hex,
            outcome,
            time_text(received_at),
        )

        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO paymentorch_inbox"
                " (processor, event_id, operation_id, outcome, received_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                params,
            )
            return cursor.rowcount == 1

        return await self._run(lambda conn: transaction(conn, body), inline=True)

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
        return [audit_from_row(r, uuid=hex_uuid, time=parse_time) for r in rows]

    # -- lifecycle --------------------------------------------------------------

    async def ping(self) -> None:
        """One round trip to the database file."""
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone(), inline=True)


class _Lost(Exception):
    """The payment's guard refused the change: undo the operation's update too."""


async def open_store(
    url: str,
    *,
    durability: Durability = "normal",
    busy_timeout: float = 30.0,
    create_schema: bool = True,
    deadline: object = None,
) -> SQLitePaymentStore:
    """Open the SQLite store that ``url`` names.

    ``busy_timeout`` (seconds) is how long a write waits for another process's; with
    ``deadline`` (seconds or a ``timedelta``), no call waits past it, its queue and busy
    timeout included.
    """
    return await SQLitePaymentStore.open(
        database_path(url),
        durability=durability,
        busy_timeout=busy_timeout,
        create_schema=create_schema,
        deadline=deadline,
    )
