"""What the SQL adapters share: column lists and turning rows back into values."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from paymentorch.adapters._wire import decode as decode_payment
from paymentorch.adapters._wire import encode as encode_payment
from paymentorch.domain import (
    AuditEntry,
    Change,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentEvent,
    PaymentStatus,
)
from paymentorch.domain.plans import (
    Installment,
    InstallmentStatus,
    LateFee,
    Plan,
    PlanStatus,
    PlanTerms,
)
from paymentorch.domain.requests import KeyedChange, RequestKey
from paymentorch.ports import OutboxMessage

PAYMENT_COLUMNS: Final = (
    "id, customer_id, amount, currency, status, created_at, updated_at, version,"
    " failure_reason, idempotency_key, metadata, captured_amount, refunded_amount,"
    " pending_refunds, has_plan"
)
PAYMENT_INSERT_COLUMNS: Final = PAYMENT_COLUMNS + ", idempotency_scope"
"""What a creation writes: the columns read back, and the key's scope (the creator's id)."""
AUDIT_COLUMNS: Final = (
    "payment_id, action, from_status, to_status, actor_id, at, reason, correlation_id"
)
OUTBOX_COLUMNS: Final = (
    "event_id, payment_id, type, occurred_at, payload, actor_id, correlation_id, operation"
)
OUTBOX_READ: Final = OUTBOX_COLUMNS + ", attempts, last_error"

OPERATION_COLUMNS: Final = (
    "id, payment_id, kind, amount, currency, status, created_at, updated_at, processor,"
    " reference, attempts, reason, idempotency_key, error, due_at, lookups, installment,"
    " processor_amount"
)
OPERATION_INSERT_COLUMNS: Final = OPERATION_COLUMNS + ", idempotency_scope"
OPERATION_KEY_INDEX: Final = "paymentorch_operations_key"

REQUEST_INSERT_COLUMNS: Final = "scope, key, payment_id, action, request, payment, created_at"
REQUEST_KEY: Final = "paymentorch_request_keys_pkey"
REQUEST_READ: Final = (
    "SELECT key, action, request, payment FROM paymentorch_request_keys WHERE scope = {0}"
    " AND key = {0}"
)
"""A transition's key as ``request_from_row`` reads it, with ``{0}`` for the placeholder."""

STATUS: Final = {s.value: s for s in PaymentStatus}
SUMMARY_DIGITS: Final = 4
"""Decimal places kept when SQL adds amounts up as integers (ISO 4217's largest exponent)."""
SUMMARY_SCALE: Final = 10**SUMMARY_DIGITS


def key_scope(change: Change) -> str | None:
    """The scope of a creation's idempotency key: the id of the actor who creates it."""
    return None if change.payment.idempotency_key is None else change.audit.actor_id


def operation_scope(change: Change) -> str | None:
    """The scope of an operation's idempotency key: the id of the actor who asks for it."""
    op = change.operation
    return None if op is None or op.idempotency_key is None else change.audit.actor_id


def refund_delta(change: Change) -> Decimal:
    """What a change asks to refund: the room the store must find under what was captured."""
    op = change.operation
    return op.amount if op is not None and op.kind is OperationKind.REFUND else Decimal(0)


def request_values(change: Change, request: RequestKey) -> tuple[str, str, str, str, str]:
    """What claiming ``request`` (``change.request``) writes, but for the payment's id and
    the time: the scope (the actor), the key, the action, what was asked and the payment
    after the change."""
    payment = encode_payment(change.payment)
    return change.audit.actor_id, request.key, request.action, request.request, payment


def request_from_row(row: Sequence[Any]) -> KeyedChange:
    """A held key as ``REQUEST_READ`` returns it."""
    key, action, request, payment = row
    return KeyedChange(RequestKey(key, action, request), decode_payment(payment))


def dumps(value: Mapping[str, Any]) -> str:
    """Compact JSON text."""
    return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)


def payment_from_row(
    row: tuple[Any, ...],
    *,
    uuid: Callable[[Any], UUID],
    time: Callable[[Any], datetime],
    metadata: Callable[[Any], Mapping[str, str]],
) -> Payment:
    """A payment from a row in ``PAYMENT_COLUMNS`` order, with the driver's converters."""
    return Payment(
        id=uuid(row[0]),
        customer_id=row[1],
        amount=row[2] if isinstance(row[2], Decimal) else Decimal(row[2]),
        currency=row[3],
        status=STATUS[row[4]],
        created_at=time(row[5]),
        updated_at=time(row[6]),
        version=row[7],
        failure_reason=row[8],
        idempotency_key=row[9],
        metadata=metadata(row[10]),
        captured_amount=_decimal(row[11]),
        refunded_amount=_decimal(row[12]),
        pending_refunds=_decimal(row[13]),
        has_plan=bool(row[14]),
    )


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


def operation_from_row(
    row: tuple[Any, ...], *, uuid: Callable[[Any], UUID], time: Callable[[Any], datetime]
) -> Operation:
    """An operation from a row in ``OPERATION_COLUMNS`` order."""
    return Operation(
        id=uuid(row[0]),
        payment_id=uuid(row[1]),
        kind=OperationKind(row[2]),
        amount=_decimal(row[3]),
        currency=row[4],
        status=OperationStatus(row[5]),
        created_at=time(row[6]),
        updated_at=time(row[7]),
        processor=row[8],
        reference=row[9],
        attempts=row[10],
        reason=row[11],
        idempotency_key=row[12],
        error=row[13],
        due_at=None if row[14] is None else time(row[14]),
        lookups=row[15],
        installment=row[16],
        processor_amount=None if row[17] is None else _decimal(row[17]),
    )


def audit_from_row(
    row: tuple[Any, ...], *, uuid: Callable[[Any], UUID], time: Callable[[Any], datetime]
) -> AuditEntry:
    """An audit entry from a row in ``AUDIT_COLUMNS`` order."""
    return AuditEntry(
        payment_id=uuid(row[0]),
        action=row[1],
        from_status=None if row[2] is None else STATUS[row[2]],
        to_status=STATUS[row[3]],
        actor_id=row[4],
        at=time(row[5]),
        reason=row[6],
        correlation_id=row[7],
    )


def message_from_row(
    row: tuple[Any, ...],
    *,
    uuid: Callable[[Any], UUID],
    time: Callable[[Any], datetime],
    payload: Callable[[Any], Mapping[str, Any]],
) -> OutboxMessage:
    """An outbox message from a row in ``OUTBOX_READ`` order."""
    return OutboxMessage(
        PaymentEvent(
            id=uuid(row[0]),
            type=row[2],
            payment_id=uuid(row[1]),
            occurred_at=time(row[3]),
            payment=payload(row[4]),
            actor_id=row[5],
            correlation_id=row[6],
            operation=None if row[7] is None else payload(row[7]),
        ),
        attempts=row[8],
        last_error=row[9],
    )


PLAN_COLUMNS: Final = (
    "payment_id, amount, currency, installments, interval_seconds, remainder,"
    " refund_allocation, status"
)
INSTALLMENT_COLUMNS: Final = "payment_id, number, amount, due_at, status, paid_at, refunded_amount"
LATE_FEE_COLUMNS: Final = "payment_id, seq, installment, amount, charged_at, paid_at, waived_at"


def plan_values(plan: Plan) -> tuple[Any, ...]:
    """A plan's row in ``PLAN_COLUMNS`` order, the payment id left to the driver."""
    terms = plan.terms
    return (
        plan.order_amount, plan.currency, terms.installments,
        int(terms.interval.total_seconds()), terms.remainder, terms.refund_allocation,
        plan.status.value,
    )  # fmt: skip


def plan_from_rows(
    payment_id: UUID,
    plan: tuple[Any, ...],
    installments: Sequence[tuple[Any, ...]],
    fees: Sequence[tuple[Any, ...]],
    *,
    time: Callable[[Any], datetime],
) -> Plan:
    """A plan from its rows (without their payment id columns), in column order."""
    amount, currency, count, seconds, remainder, allocation, status = plan
    terms = PlanTerms(count, timedelta(seconds=seconds), remainder, allocation)
    return Plan(
        payment_id=payment_id,
        order_amount=_decimal(amount),
        currency=currency,
        terms=terms,
        status=PlanStatus(status),
        installments=tuple(
            Installment(
                number=number,
                amount=_decimal(amount),
                due_at=time(due_at),
                status=InstallmentStatus(state),
                paid_at=None if paid_at is None else time(paid_at),
                refunded_amount=_decimal(refunded),
            )
            for number, amount, due_at, state, paid_at, refunded in installments
        ),
        late_fees=tuple(
            LateFee(
                installment,
                _decimal(amount),
                time(at),
                None if paid is None else time(paid),
                None if waived is None else time(waived),
            )
            for installment, amount, at, paid, waived in fees
        ),
    )


def exposure_sql(total: Callable[[str], str]) -> str:
    """Each customer's exposure per currency as payments and plans say it should be:
    Pending and Authorized payments, and the unpaid installments of confirmed ones;
    ``total`` sums a column of amounts."""
    return (
        f"SELECT customer_id, currency, {total('amount')} FROM ("
        " SELECT customer_id, currency, amount FROM paymentorch_payments"
        " WHERE status IN ('Pending', 'Authorized')"
        " UNION ALL SELECT p.customer_id, p.currency, i.amount"
        " FROM paymentorch_installments i JOIN paymentorch_payments p ON p.id = i.payment_id"
        " WHERE p.status = 'Confirmed' AND i.status IN ('scheduled', 'overdue')"
        ") AS owed GROUP BY customer_id, currency"
    )


def plans_due_sql(placeholder: str) -> str:
    """Payments whose plan has an installment late (``scheduled``, due before the first
    parameter) or maybe owing a repeat fee (``overdue``, due before the second)."""
    return (
        "SELECT DISTINCT i.payment_id FROM paymentorch_installments i"
        " JOIN paymentorch_plans p ON p.payment_id = i.payment_id"
        " WHERE p.status IN ('active', 'delinquent')"
        f" AND ((i.status = 'scheduled' AND i.due_at <= {placeholder})"
        f" OR (i.status = 'overdue' AND i.due_at <= {placeholder}))"
    )


def installments_due_sql(placeholder: str) -> str:
    """Unpaid installments due (before the first parameter) on running plans that no
    operation collects yet; at most the second parameter of them, soonest first."""
    return (
        "SELECT i.payment_id, i.number FROM paymentorch_installments i"
        " JOIN paymentorch_plans p ON p.payment_id = i.payment_id"
        " WHERE p.status IN ('active', 'delinquent')"
        " AND i.status IN ('scheduled', 'overdue')"
        f" AND i.due_at <= {placeholder}"
        " AND NOT EXISTS (SELECT 1 FROM paymentorch_operations o"
        " WHERE o.payment_id = i.payment_id AND o.kind = 'installment'"
        " AND o.installment = i.number)"
        f" ORDER BY i.due_at LIMIT {placeholder}"
    )
