"""What the SQL adapters share: column lists and turning rows back into values."""

from __future__ import annotations

import json
from collections import defaultdict
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
from paymentorch.domain.integrity import PaymentRecords
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry, Posting
from paymentorch.domain.plans import (
    Installment,
    InstallmentStatus,
    LateFee,
    Plan,
    PlanStatus,
    PlanTerms,
)
from paymentorch.domain.records import PaymentSnapshot
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
AUDIT_INSERT_COLUMNS: Final = AUDIT_COLUMNS + ", event_id"
"""What an audit entry's insert writes: its columns, and the event it was written with."""
JOURNAL_COLUMNS: Final = "id, payment_id, operation_id, kind, at, correlation_id"
POSTING_COLUMNS: Final = "entry_id, line, payment_id, account_kind, owner, currency, amount"
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


def plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as a dict (an event's snapshot without a lookup a key)."""
    return value.to_dict() if isinstance(value, PaymentSnapshot) else dict(value)


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# One encoder: ``json.dumps`` builds a new one whenever its options are not the defaults.


def dumps(value: Mapping[str, Any]) -> str:
    """Compact JSON text."""
    return _COMPACT.encode(plain(value)) if value else "{}"


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
    " refund_allocation, status, collection_stopped"
)
INSTALLMENT_COLUMNS: Final = (
    "payment_id, number, amount, due_at, status, paid_at, refunded_amount, attempts,"
    " next_attempt_at, last_decline, reminded_seconds, ladder_start"
)
INSTALLMENT_UPDATES: Final = ", ".join(
    f"{c} = EXCLUDED.{c}"
    for c in ("amount", "status", "paid_at", "refunded_amount", "attempts", "next_attempt_at",
              "last_decline", "reminded_seconds", "ladder_start")
)  # fmt: skip
"""What an installment's upsert changes (all but its key and due date)."""
LATE_FEE_COLUMNS: Final = "payment_id, seq, installment, amount, charged_at, paid_at, waived_at"


def plan_values(plan: Plan) -> tuple[Any, ...]:
    """A plan's row in ``PLAN_COLUMNS`` order, the payment id left to the driver."""
    terms = plan.terms
    return (
        plan.order_amount, plan.currency, terms.installments,
        int(terms.interval.total_seconds()), terms.remainder, terms.refund_allocation,
        plan.status.value, plan.collection_stopped,
    )  # fmt: skip


def installment_values(installment: Installment) -> tuple[Any, ...]:
    """An installment's row in ``INSTALLMENT_COLUMNS`` order, the payment id left out;
    times and amounts as they are (each driver converts)."""
    i = installment
    reminded = None if i.reminded is None else int(i.reminded.total_seconds())
    return (i.number, i.amount, i.due_at, i.status.value, i.paid_at, i.refunded_amount,
            i.attempts, i.next_attempt_at, i.last_decline, reminded, i.ladder_start)  # fmt: skip


def plan_from_rows(
    payment_id: UUID,
    plan: tuple[Any, ...],
    installments: Sequence[tuple[Any, ...]],
    fees: Sequence[tuple[Any, ...]],
    *,
    time: Callable[[Any], datetime],
) -> Plan:
    """A plan from its rows (without their payment id columns), in column order."""
    amount, currency, count, seconds, remainder, allocation, status, stopped = plan
    terms = PlanTerms(count, timedelta(seconds=seconds), remainder, allocation)
    return Plan(
        payment_id=payment_id,
        order_amount=_decimal(amount),
        currency=currency,
        terms=terms,
        status=PlanStatus(status),
        collection_stopped=bool(stopped),
        installments=tuple(
            Installment(
                number=number,
                amount=_decimal(amount),
                due_at=time(due_at),
                status=InstallmentStatus(state),
                paid_at=None if paid_at is None else time(paid_at),
                refunded_amount=_decimal(refunded),
                attempts=attempts,
                next_attempt_at=None if next_at is None else time(next_at),
                last_decline=decline,
                reminded=None if reminded is None else timedelta(seconds=reminded),
                ladder_start=ladder_start,
            )
            for (
                number,
                amount,
                due_at,
                state,
                paid_at,
                refunded,
                attempts,
                next_at,
                decline,
                reminded,
                ladder_start,
            ) in installments
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


def journal_rows(
    entry: JournalEntry,
    *,
    uuid: Callable[[UUID], Any],
    time: Callable[[datetime], Any],
    money: Callable[[Decimal], Any],
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """An entry's row (``JOURNAL_COLUMNS``) and its lines' (``POSTING_COLUMNS``), with the
    driver's converters."""
    head = (uuid(entry.id), uuid(entry.payment_id),
            None if entry.operation_id is None else uuid(entry.operation_id), entry.kind,
            time(entry.at), entry.correlation_id)  # fmt: skip
    lines = [
        (uuid(entry.id), number, uuid(entry.payment_id), line.account.kind.value,
         line.account.owner, line.account.currency, money(line.amount))
        for number, line in enumerate(entry.lines, start=1)
    ]  # fmt: skip
    return head, lines


def journal_from_rows(
    entries: Sequence[tuple[Any, ...]],
    lines: Sequence[tuple[Any, ...]],
    *,
    uuid: Callable[[Any], UUID],
    time: Callable[[Any], datetime],
) -> list[JournalEntry]:
    """Entries (rows in ``JOURNAL_COLUMNS`` order) with their lines (rows of ``entry_id,
    account_kind, owner, currency, amount``, in line order), in the entries' order."""
    postings: dict[UUID, list[Posting]] = {}
    for entry_id, kind, owner, currency, amount in lines:
        account = Account(AccountKind(kind), owner, currency)
        postings.setdefault(uuid(entry_id), []).append(Posting(account, _decimal(amount)))
    found = []
    for entry_id, payment_id, operation_id, kind, at, correlation_id in entries:
        key = uuid(entry_id)
        operation = None if operation_id is None else uuid(operation_id)
        lines_of = tuple(postings.get(key, ()))
        found.append(
            JournalEntry(key, uuid(payment_id), operation, kind, time(at), lines_of, correlation_id)
        )
    return found


_OWED: Final = (
    "SELECT customer_id, currency, amount FROM paymentorch_payments"
    " WHERE status IN ('Pending', 'Authorized')"
    " UNION ALL SELECT p.customer_id, p.currency, i.amount"
    " FROM paymentorch_installments i JOIN paymentorch_payments p ON p.id = i.payment_id"
    " WHERE p.status = 'Confirmed' AND i.status IN ('scheduled', 'overdue')"
)
"""What customers owe, row by row: Pending and Authorized payments, and the unpaid
installments of confirmed ones (``customer_id, currency, amount``)."""


def exposure_sql(total: Callable[[str], str]) -> str:
    """Each customer's exposure per currency as payments and plans say it should be;
    ``total`` sums a column of amounts."""
    return (
        f"SELECT customer_id, currency, {total('amount')} FROM ({_OWED}) AS owed"
        " GROUP BY customer_id, currency"
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
        " ORDER BY i.payment_id"
    )


def installments_due_sql(placeholder: str) -> str:
    """Unpaid installments due (before the first parameter) on running plans whose
    collection did not stop and with no collection of an installment still owed, nor
    refund, under way (no collection is sent while a refund waits), never tried or with
    a retry due (before the second); at most the third parameter of them, soonest
    first."""
    return (
        "SELECT i.payment_id, i.number FROM paymentorch_installments i"
        " JOIN paymentorch_plans p ON p.payment_id = i.payment_id"
        " WHERE p.status IN ('active', 'delinquent') AND NOT p.collection_stopped"
        " AND i.status IN ('scheduled', 'overdue')"
        f" AND i.due_at <= {placeholder}"
        f" AND (i.attempts = 0 OR i.next_attempt_at <= {placeholder})"
        " AND NOT EXISTS (SELECT 1 FROM paymentorch_operations o"
        " WHERE o.payment_id = i.payment_id"
        " AND o.status IN ('pending', 'unknown', 'needs_attention')"
        " AND (o.kind = 'refund' OR (o.kind = 'installment' AND EXISTS (SELECT 1"
        " FROM paymentorch_installments j WHERE j.payment_id = o.payment_id"
        " AND j.number = o.installment AND j.status IN ('scheduled', 'overdue')))))"
        f" ORDER BY i.due_at, i.payment_id, i.number LIMIT {placeholder}"
    )


def plans_to_remind_sql(placeholder: str) -> str:
    """Running plans whose collection did not stop with an unpaid installment after the
    first due after the first parameter and by the second, not yet reminded at the
    smallest offset (the third, in seconds)."""
    return (
        "SELECT DISTINCT i.payment_id FROM paymentorch_installments i"
        " JOIN paymentorch_plans p ON p.payment_id = i.payment_id"
        " WHERE p.status IN ('active', 'delinquent') AND NOT p.collection_stopped"
        " AND i.status = 'scheduled' AND i.number > 1"
        f" AND i.due_at > {placeholder} AND i.due_at <= {placeholder}"
        f" AND (i.reminded_seconds IS NULL OR i.reminded_seconds > {placeholder})"
        " ORDER BY i.payment_id"
    )


def plans_by_age_sql(placeholder: str, *, after: bool) -> str:
    """Running plans' payment ids and oldest unpaid due dates, oldest first, ties by payment
    id; with ``after``, past the position of the first two parameters; then the limit."""
    past = f" HAVING (min(i.due_at), i.payment_id) > ({placeholder}, {placeholder})"
    return (
        "SELECT i.payment_id, min(i.due_at) AS oldest FROM paymentorch_installments i"
        " JOIN paymentorch_plans p ON p.payment_id = i.payment_id"
        " WHERE p.status IN ('active', 'delinquent') AND i.status IN ('scheduled', 'overdue')"
        f" GROUP BY i.payment_id{past if after else ''}"
        f" ORDER BY oldest, i.payment_id LIMIT {placeholder}"
    )


def journal_queries(among: str) -> tuple[str, str]:
    """The journal entries, then their lines, of the payments whose ``payment_id {among}``,
    in the order ``journal_from_rows`` reads them."""
    where = f"WHERE payment_id {among}"
    return (
        f"SELECT {JOURNAL_COLUMNS} FROM paymentorch_journal_entries {where} ORDER BY id",
        "SELECT entry_id, account_kind, owner, currency, amount FROM paymentorch_postings"
        f" {where} ORDER BY entry_id, line",
    )


def records_queries(among: str) -> tuple[str, ...]:
    """The queries that read a batch of payments' records for the integrity check, each
    picking the batch with ``payment_id {among}`` (the same parameters for each): audit
    entries with their events, events waiting, events delivered, journal entries, their
    lines, plans, installments, fees."""
    where = f"WHERE payment_id {among}"
    return (
        f"SELECT {AUDIT_INSERT_COLUMNS} FROM paymentorch_audit_entries {where}"
        " ORDER BY payment_id, seq",
        f"SELECT payment_id, event_id FROM paymentorch_outbox {where}",
        f"SELECT payment_id, event_id FROM paymentorch_deliveries {where}",
        *journal_queries(among),
        f"SELECT {PLAN_COLUMNS} FROM paymentorch_plans {where}",
        f"SELECT {INSTALLMENT_COLUMNS} FROM paymentorch_installments {where}"
        " ORDER BY payment_id, number",
        f"SELECT {LATE_FEE_COLUMNS} FROM paymentorch_late_fees {where} ORDER BY payment_id, seq",
    )


def records_from_rows(
    payments: Sequence[Payment],
    rows: Sequence[Sequence[tuple[Any, ...]]],
    *,
    uuid: Callable[[Any], UUID],
    time: Callable[[Any], datetime],
) -> list[PaymentRecords]:
    """Each payment's records, from the rows of ``records_queries`` (in their order)."""
    audits, waiting, delivered, entries, lines, plans, installments, fees = rows
    trails: dict[UUID, list[AuditEntry]] = defaultdict(list)
    linked: dict[UUID, list[UUID | None]] = defaultdict(list)
    for row in audits:
        audit = audit_from_row(row, uuid=uuid, time=time)
        trails[audit.payment_id].append(audit)
        linked[audit.payment_id].append(None if row[-1] is None else uuid(row[-1]))
    events: dict[UUID, set[UUID]] = defaultdict(set)
    for payment_id, event_id in (*waiting, *delivered):
        events[uuid(payment_id)].add(uuid(event_id))
    journals: dict[UUID, list[JournalEntry]] = defaultdict(list)
    for entry in journal_from_rows(entries, lines, uuid=uuid, time=time):
        journals[entry.payment_id].append(entry)
    by_plan: dict[UUID, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = defaultdict(
        lambda: ([], [])
    )
    for row in installments:
        by_plan[uuid(row[0])][0].append(row[1:])
    for row in fees:
        by_plan[uuid(row[0])][1].append(row[2:])
    found_plans = {
        uuid(row[0]): plan_from_rows(uuid(row[0]), row[1:], *by_plan[uuid(row[0])], time=time)
        for row in plans
    }
    return [
        PaymentRecords(
            payment=p,
            audit=trails[p.id],
            events=frozenset(events[p.id]),
            event_ids=linked[p.id],
            journal=journals[p.id],
            plan=found_plans.get(p.id),
        )
        for p in payments
    ]


def exposure_differences_sql(total: Callable[[str], str]) -> str:
    """Each (customer, currency) whose stored exposure is not what payments and plans owe:
    ``customer_id, currency, stored, owed``, ``total`` summing a column of amounts."""
    stored, owed = total("stored"), total("owed")
    return (
        f"SELECT customer_id, currency, {stored}, {owed} FROM ("
        " SELECT customer_id, currency, amount AS stored, 0 AS owed FROM paymentorch_exposure"
        f" UNION ALL SELECT customer_id, currency, 0, amount FROM ({_OWED}) AS owing"
        f") AS figures GROUP BY customer_id, currency HAVING {stored} <> {owed}"
    )
