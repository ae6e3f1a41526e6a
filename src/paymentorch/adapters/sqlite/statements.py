"""What both SQLite stores share: statements, and values to and from rows.

Amounts are exact decimal text, times fixed-width ISO 8601 UTC text (text order is time
order), ids 32 hex digits.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar
from uuid import UUID, SafeUUID

from paymentorch.adapters._sql import (
    AUDIT_INSERT_COLUMNS,
    INSTALLMENT_COLUMNS,
    INSTALLMENT_UPDATES,
    JOURNAL_COLUMNS,
    LATE_FEE_COLUMNS,
    OPERATION_COLUMNS,
    OPERATION_INSERT_COLUMNS,
    OUTBOX_COLUMNS,
    OUTBOX_READ,
    PAYMENT_COLUMNS,
    PAYMENT_INSERT_COLUMNS,
    PLAN_COLUMNS,
    POSTING_COLUMNS,
    REQUEST_INSERT_COLUMNS,
    SUMMARY_SCALE,
    dumps,
    installment_values,
    journal_rows,
    key_scope,
    message_from_row,
    operation_from_row,
    operation_scope,
    payment_from_row,
    plan_from_rows,
    plan_values,
    request_values,
)
from paymentorch.domain import (
    Change,
    CreditLimitExceeded,
    FieldError,
    IdempotencyConflict,
    Operation,
    Payment,
    PaymentStatus,
    ValidationError,
)
from paymentorch.domain.ledger import JournalEntry
from paymentorch.domain.plans import Plan
from paymentorch.ports import OutboxMessage

T = TypeVar("T")

INSERT_PAYMENT: Final = (
    f"INSERT INTO paymentorch_payments ({PAYMENT_INSERT_COLUMNS})"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_AUDIT: Final = (
    f"INSERT INTO paymentorch_audit_entries ({AUDIT_INSERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
)
INSERT_EVENT: Final = f"INSERT INTO paymentorch_outbox ({OUTBOX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
INSERT_OPERATION: Final = (
    f"INSERT INTO paymentorch_operations ({OPERATION_INSERT_COLUMNS})"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
SETTLE: Final = (
    "UPDATE paymentorch_operations SET status = ?, processor = ?, reference = ?,"
    " attempts = ?, error = ?, due_at = ?, lookups = ?, updated_at = ?,"
    " processor_amount = ?, lease_until = NULL"
    " WHERE id = ? AND status = ? AND attempts = ? AND lookups = ?"
)
# A pending operation leased before and never settled: its worker may have sent it and
# stopped before recording the answer, so its outcome is unknown until looked up.
IN_DOUBT: Final = "status = 'pending' AND lease_until IS NOT NULL"
CLAIM_OPERATIONS: Final = f"""
UPDATE paymentorch_operations SET lease_until = ?,
  status = CASE WHEN {IN_DOUBT} THEN 'unknown' ELSE status END,
  error = CASE WHEN {IN_DOUBT} THEN ? ELSE error END
WHERE id IN (
  SELECT id FROM paymentorch_operations
  WHERE status IN ('pending', 'unknown') AND due_at IS NOT NULL AND due_at <= ?
    AND (lease_until IS NULL OR lease_until <= ?)
  ORDER BY due_at, id LIMIT ?)
RETURNING {OPERATION_COLUMNS}
"""


def scaled(column: str) -> str:
    """``column``, decimal text, as an exact integer of 10^-4 units."""
    # Amounts are decimal text, and SQLite's arithmetic on text is floating point: work on
    # them as exact integers of 10^-4 units (ISO 4217's finest minor unit).
    return f"CAST(round({column} * {SUMMARY_SCALE}) AS INTEGER)"


UPDATE: Final = (
    "UPDATE paymentorch_payments SET status = ?, version = ?, updated_at = ?,"
    " failure_reason = ?, captured_amount = ?, refunded_amount = ?, pending_refunds = ?"
    " WHERE id = ? AND status = ? AND version = ?"
    f" AND {scaled('refunded_amount')} + {scaled('pending_refunds')} + ?"
    f" <= {scaled('captured_amount')}"
)
SELECT: Final = f"SELECT {PAYMENT_COLUMNS} FROM paymentorch_payments"
CLAIM: Final = f"""
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


_last_time: tuple[datetime | None, str] = (None, "")


def time_text(value: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order (years below 1000 too,
    which ``strftime("%Y")`` would not pad)."""
    global _last_time  # noqa: PLW0603 - one change writes one time in four or five places
    last = _last_time
    if value is last[0]:
        return last[1]
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"
    _last_time = (value, text)
    return text


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


_new = object.__new__
_set = object.__setattr__


def hex_uuid(value: str) -> UUID:
    """The id written as 32 hex digits, without ``UUID()``'s parsing of other forms."""
    if len(value) != 32 or not value.isalnum():  # not as written: UUID() says what is wrong
        return UUID(hex=value)
    uuid = _new(UUID)
    _set(uuid, "int", int(value, 16))
    _set(uuid, "is_safe", SafeUUID.unknown)
    return uuid


def _metadata(value: str) -> Any:
    return {} if value == "{}" else json.loads(value)


def row_payment(row: tuple[Any, ...]) -> Payment:
    return payment_from_row(row, uuid=hex_uuid, time=parse_time, metadata=_metadata)


def payment_params(change: Change) -> tuple[Any, ...]:
    payment = change.payment
    return (
        payment.id.hex,
        payment.customer_id,
        str(payment.amount),
        payment.currency,
        payment.status.value,
        time_text(payment.created_at),
        time_text(payment.updated_at),
        payment.version,
        payment.failure_reason,
        payment.idempotency_key,
        dumps(payment.metadata),
        str(payment.captured_amount),
        str(payment.refunded_amount),
        str(payment.pending_refunds),
        int(payment.has_plan),
        key_scope(change),
    )


def update_params(change: Change, expected: PaymentStatus) -> tuple[Any, ...]:
    """``UPDATE``'s parameters: the new state, and the guards it is written under."""
    new, guard = change.payment, change.guard
    return (
        new.status.value,
        new.version,
        time_text(new.updated_at),
        new.failure_reason,
        str(new.captured_amount),
        str(new.refunded_amount),
        str(new.pending_refunds),
        new.id.hex,
        expected.value,
        guard.version,
        int(guard.refund_room * SUMMARY_SCALE),
    )


def post(conn: sqlite3.Connection, entry: JournalEntry) -> None:
    """Insert a journal entry and its lines."""
    head, lines = journal_rows(entry, uuid=_hex, time=time_text, money=str)
    conn.execute(f"INSERT INTO paymentorch_journal_entries ({JOURNAL_COLUMNS}) VALUES"
                 " (?,?,?,?,?,?)", head)  # fmt: skip
    if lines:  # one statement for all of them: a statement costs more than its rows
        conn.execute(_insert_postings(len(lines)), [value for line in lines for value in line])


@functools.cache
def _insert_postings(count: int) -> str:
    rows = ", ".join(["(?,?,?,?,?,?,?)"] * count)
    return f"INSERT INTO paymentorch_postings ({POSTING_COLUMNS}) VALUES {rows}"


def _hex(value: UUID) -> str:
    return value.hex


def insert_records(conn: sqlite3.Connection, change: Change) -> None:
    if change.exposure:
        move_exposure(conn, change)
    if change.plan is not None:
        write_plan(conn, change.plan)
    audit, event = change.audit, change.event
    conn.execute(
        INSERT_AUDIT,
        (
            audit.payment_id.hex,
            audit.action,
            None if audit.from_status is None else audit.from_status.value,
            audit.to_status.value,
            audit.actor_id,
            time_text(audit.at),
            audit.reason,
            audit.correlation_id,
            event.id.hex,
        ),
    )
    if change.journal is not None:
        post(conn, change.journal)
    conn.executemany(
        INSERT_EVENT,
        [
            (
                e.id.hex,
                e.payment_id.hex,
                e.type,
                time_text(e.occurred_at),
                dumps(e.payment),
                e.actor_id,
                e.correlation_id,
                None if e.operation is None else dumps(e.operation),
            )
            for e in (event, *change.more_events)
        ],
    )
    op = change.operation
    if op is not None:
        try:
            conn.execute(
                INSERT_OPERATION,
                (
                    op.id.hex,
                    op.payment_id.hex,
                    op.kind.value,
                    str(op.amount),
                    op.currency,
                    op.status.value,
                    time_text(op.created_at),
                    time_text(op.updated_at),
                    op.processor,
                    op.reference,
                    op.attempts,
                    op.reason,
                    op.idempotency_key,
                    op.error,
                    None if op.due_at is None else time_text(op.due_at),
                    op.lookups,
                    op.installment,
                    None if op.processor_amount is None else str(op.processor_amount),
                    operation_scope(change),
                ),
            )
        except sqlite3.IntegrityError as exc:
            if op.idempotency_key is not None and "idempotency" in str(exc):
                raise IdempotencyConflict(op.idempotency_key, "already used") from None
            raise


def settle_params(previous: Operation, operation: Operation) -> tuple[Any, ...]:
    """``SETTLE``'s parameters: the operation's new state, guarded by its previous one."""
    return (
        operation.status.value,
        operation.processor,
        operation.reference,
        operation.attempts,
        operation.error,
        None if operation.due_at is None else time_text(operation.due_at),
        operation.lookups,
        time_text(operation.updated_at),
        None if operation.processor_amount is None else str(operation.processor_amount),
        operation.id.hex,
        previous.status.value,
        previous.attempts,
        previous.lookups,
    )


def write_plan(conn: sqlite3.Connection, plan: Plan) -> None:
    """Insert or update the plan, its installments and its late fees."""
    pid = plan.payment_id.hex
    conn.execute(
        f"INSERT INTO paymentorch_plans ({PLAN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (payment_id) DO UPDATE SET status = excluded.status,"
        " collection_stopped = excluded.collection_stopped",
        (pid, *(str(v) if isinstance(v, Decimal) else v for v in plan_values(plan))),
    )
    conn.executemany(
        f"INSERT INTO paymentorch_installments ({INSTALLMENT_COLUMNS})"
        f" VALUES ({', '.join('?' * 12)})"
        f" ON CONFLICT (payment_id, number) DO UPDATE SET {INSTALLMENT_UPDATES}",
        [(pid, *map(_sqlite_value, installment_values(i))) for i in plan.installments],
    )  # fmt: skip
    conn.executemany(
        f"INSERT INTO paymentorch_late_fees ({LATE_FEE_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (payment_id, seq) DO UPDATE SET paid_at = excluded.paid_at,"
        " waived_at = excluded.waived_at",
        [
            (pid, seq, fee.installment, str(fee.amount), time_text(fee.charged_at),
             None if fee.paid_at is None else time_text(fee.paid_at),
             None if fee.waived_at is None else time_text(fee.waived_at))
            for seq, fee in enumerate(plan.late_fees, start=1)
        ],
    )  # fmt: skip


def _sqlite_value(value: object) -> object:
    """A value as SQLite stores it: amounts as exact text, times as sortable text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return time_text(value)
    return value


def read_plan(conn: sqlite3.Connection, payment_id: UUID) -> Plan | None:
    """The payment's plan, or None."""
    pid = payment_id.hex
    row = conn.execute(
        f"SELECT {PLAN_COLUMNS} FROM paymentorch_plans WHERE payment_id = ?", (pid,)
    ).fetchone()
    if row is None:
        return None
    installments = conn.execute(
        f"SELECT {INSTALLMENT_COLUMNS.split(', ', 1)[1]}"
        " FROM paymentorch_installments WHERE payment_id = ? ORDER BY number",
        (pid,),
    ).fetchall()
    fees = conn.execute(
        "SELECT installment, amount, charged_at, paid_at, waived_at FROM paymentorch_late_fees"
        " WHERE payment_id = ? ORDER BY seq",
        (pid,),
    ).fetchall()
    return plan_from_rows(payment_id, row[1:], installments, fees, time=parse_time)


EXPOSURE_MOVED: Final = "paymentorch_exposure_moved"
"""The SQL function ``connect`` registers: an exposure (money as text) moved by a delta,
in exact decimals (SQLite's own arithmetic would go through floats), never below 0."""


def exposure_moved(amount: str | None, delta: str | Decimal) -> str:
    """``amount`` moved by ``delta``, never below 0, as the exposure row keeps it."""
    before = Decimal(amount) if amount is not None else Decimal(0)
    return str(max(Decimal(0), before + Decimal(delta)))


def move_exposure(conn: sqlite3.Connection, change: Change) -> None:
    """Move the customer's exposure by ``change.exposure``, refusing to grow it past
    the guard's credit limit; the transaction (``BEGIN IMMEDIATE``) makes it atomic.
    Without a limit to check it is one statement."""
    customer, currency = change.payment.customer_id, change.payment.currency
    limit = change.growth_limit
    if limit is None:
        conn.execute(
            "INSERT INTO paymentorch_exposure (customer_id, currency, amount) VALUES (?, ?, ?)"
            f" ON CONFLICT (customer_id, currency) DO UPDATE SET amount = {EXPOSURE_MOVED}"
            "(paymentorch_exposure.amount, ?)",
            (customer, currency, exposure_moved(None, change.exposure), str(change.exposure)),
        )
        return
    row = conn.execute(
        "SELECT amount FROM paymentorch_exposure WHERE customer_id = ? AND currency = ?",
        (customer, currency),
    ).fetchone()
    before = Decimal(row[0]) if row else Decimal(0)
    if before + change.exposure > limit:
        raise CreditLimitExceeded(customer, limit, before, change.exposure)
    conn.execute(
        "INSERT INTO paymentorch_exposure (customer_id, currency, amount) VALUES (?, ?, ?)"
        " ON CONFLICT (customer_id, currency) DO UPDATE SET amount = excluded.amount",
        (customer, currency, exposure_moved(None if row is None else row[0], change.exposure)),
    )


def write_change(conn: sqlite3.Connection, change: Change, expected: PaymentStatus) -> bool:
    """The guarded update and, if it matched, the change's records; say if it did."""
    if conn.execute(UPDATE, update_params(change, expected)).rowcount != 1:
        return False
    insert_records(conn, change)
    request = change.request
    if request is not None:
        scope, key, action, asked, payment = request_values(change, request)
        try:
            conn.execute(
                f"INSERT INTO paymentorch_request_keys ({REQUEST_INSERT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (scope, key, change.payment.id.hex, action, asked, payment,
                 time_text(change.payment.updated_at)),
            )  # fmt: skip
        except sqlite3.IntegrityError:
            raise IdempotencyConflict(key, "already used") from None
    return True


def row_operation(row: tuple[Any, ...]) -> Operation:
    return operation_from_row(row, uuid=hex_uuid, time=parse_time)


def transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def snapshot(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """``body``'s reads in one read transaction: all as of one moment."""
    conn.execute("BEGIN")
    try:
        return body(conn)
    finally:
        conn.execute("COMMIT")


def where_filters(
    status: PaymentStatus | None,
    customer_id: str | None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[list[str], list[Any]]:
    """Conditions and parameters for the filters that are set."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status.value)
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    if created_from is not None:
        where.append("created_at >= ?")
        params.append(time_text(created_from))
    if created_to is not None:
        where.append("created_at < ?")
        params.append(time_text(created_to))
    return where, params


def row_message(row: tuple[Any, ...]) -> OutboxMessage:
    return message_from_row(row, uuid=hex_uuid, time=parse_time, payload=json.loads)


def database_path(url: str) -> str:
    """The file path in ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise ValidationError(
            [FieldError("url", "SQLite URLs look like sqlite:///payments.db", "url")]
        )
    path = rest[1:].split("?", 1)[0]
    return path if path == ":memory:" else str(Path(path))
