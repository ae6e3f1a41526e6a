"""A PostgreSQL database of many payments whose books agree, for timing ``verify``.

A template of payments is made through the service (plain confirmations, refunds,
pay-in-4 plans with an installment paid by hand, late fees, a waiver, payments left
Pending or cancelled; every event delivered by a relay), then copied by the server
itself: each copy is the template's rows with every id moved to a later millisecond
(ids stay time-ordered, as UUIDv7s are) and fresh random bits. Customers are shared
by the copies; their exposure is recounted by ``rebuild_exposure`` at the end.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

import paymentorch as po
from benchmarks.harness import ADMIN
from paymentorch.clock import ManualClock

TEMPLATE = 1000
"""Payments in the template; a database holds whole copies of it."""

FEES = po.LateFeePolicy(Decimal(10), currency="USD")

# Each table's columns, with the ids a copy moves (``remap``); seq columns are left to
# their sequences, so a copy's rows come after the template's.
_UUIDS = ("id", "payment_id", "event_id", "entry_id", "operation_id")
_TABLES = {
    "paymentorch_payments": "id, customer_id, amount, currency, status, created_at,"
    " updated_at, version, failure_reason, idempotency_key, metadata, idempotency_scope,"
    " captured_amount, refunded_amount, pending_refunds, has_plan",
    "paymentorch_audit_entries": "payment_id, action, from_status, to_status, actor_id, at,"
    " reason, correlation_id, event_id",
    "paymentorch_outbox": "event_id, payment_id, type, occurred_at, payload, actor_id,"
    " correlation_id, state, attempts, available_at, lease_until, last_error, operation",
    "paymentorch_deliveries": "event_id, payment_id",
    "paymentorch_operations": "id, payment_id, kind, amount, currency, status, processor,"
    " reference, attempts, reason, idempotency_key, idempotency_scope, error, created_at,"
    " updated_at, due_at, lookups, lease_until, installment, processor_amount",
    "paymentorch_journal_entries": "id, payment_id, operation_id, kind, at, correlation_id",
    "paymentorch_postings": "entry_id, line, payment_id, account_kind, owner, currency, amount",
    "paymentorch_plans": "payment_id, amount, currency, installments, interval_seconds,"
    " remainder, refund_allocation, status",
    "paymentorch_installments": "payment_id, number, amount, due_at, status, paid_at,"
    " refunded_amount",
    "paymentorch_late_fees": "payment_id, seq, installment, amount, charged_at, paid_at, waived_at",
}
_ORDER = {  # the template's own order, so that a copy is written as the service wrote it
    "paymentorch_audit_entries": "seq",
    "paymentorch_outbox": "seq",
    "paymentorch_postings": "entry_id, line",
    "paymentorch_installments": "payment_id, number",
    "paymentorch_late_fees": "payment_id, seq",
}
# UUIDv7: 48 bits of milliseconds, then the version and 12 bits, then the variant; a copy
# keeps those and draws the remaining 60 bits from md5(copy, id).
_REMAP = """
CREATE FUNCTION pg_temp.remap(old uuid, k int, span bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN old IS NULL OR k = 0 THEN old ELSE (
    lpad(to_hex(('x' || substr(replace(old::text, '-', ''), 1, 12))::bit(48)::bigint
                + k * span), 12, '0')
    || substr(replace(old::text, '-', ''), 13, 5)
    || substr(md5(k::text || old::text), 1, 15))::uuid END
$$
"""


async def template(url: str, count: int = TEMPLATE) -> None:
    """``count`` payments written by the service, in twenty kinds of history."""
    clock = ManualClock(datetime.now(UTC) - timedelta(days=60))
    async with await po.open_service(url, clock=clock, late_fees=FEES) as service:
        plans: dict[int, list[Any]] = {14: [], 15: [], 16: [], 17: []}
        for index in range(count):
            kind = index % 20
            customer = f"SEED-{index % 997:05d}"
            terms = po.PlanTerms() if kind in plans else None
            payment = await service.create_payment(customer, "125.50", actor=ADMIN, plan=terms)
            if kind == 18:  # left Pending
                continue
            if kind == 19:
                await service.cancel_payment(payment.id, actor=ADMIN, reason="changed mind")
                continue
            await service.confirm_payment(payment.id, actor=ADMIN)
            if kind in (12, 13):
                await service.refund_payment(payment.id, "25.50", actor=ADMIN)
            if kind in plans:
                plans[kind].append(payment.id)
        for pid in plans[16]:  # the second installment, paid by hand before it is due
            await service.pay_installment(pid, 2, actor=ADMIN)
        clock.advance(timedelta(days=15))
        await service.process_overdue()  # 14, 15, 17: late, with a fee
        for pid in plans[15]:
            await service.waive_installment(pid, 2, actor=ADMIN, reason="goodwill")
        for pid in plans[17]:
            await service.pay_installment(pid, 2, actor=ADMIN)  # with its fee
        relay = po.OutboxRelay(service.store, _drop, batch_size=1000)
        while await relay.run_once():
            pass


async def _drop(_events: Any) -> None:
    return None


def grow(url: str, size: int, *, held: int = TEMPLATE, chunk: int = 50) -> float:
    """Copy the template (the first ``held`` payments) until the database holds ``size``
    payments, ``chunk`` copies a transaction; return the seconds it took. Exposure is
    left to ``rebuild_exposure``."""
    if size % held:
        raise ValueError(f"{size:,} is not a multiple of the template's {held:,} payments")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_REMAP)
        row = conn.execute(_SPAN, {"held": held}).fetchone()
        assert row is not None
        have, span = row[0] // held, row[1]
        for start in range(have, size // held, chunk):
            params = {"first": start, "last": min(start + chunk, size // held) - 1,
                      "span": span, "held": held}  # fmt: skip
            with conn.transaction():
                for table, columns in _TABLES.items():
                    conn.execute(_copy_sql(table, columns), params)
        for table in _TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


# How many payments there are, and the milliseconds the template's ids span (plus one):
# its entries, events and operations were made after its last payment.
_SPAN = """
WITH template AS (SELECT id FROM paymentorch_payments ORDER BY id LIMIT %(held)s),
ids AS (
  SELECT id FROM template
  UNION ALL SELECT event_id FROM paymentorch_audit_entries
    WHERE payment_id IN (SELECT id FROM template)
  UNION ALL SELECT id FROM paymentorch_journal_entries
    WHERE payment_id IN (SELECT id FROM template)
  UNION ALL SELECT id FROM paymentorch_operations WHERE payment_id IN (SELECT id FROM template)
), ms AS (SELECT ('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint AS ms
          FROM ids)
SELECT (SELECT count(*) FROM paymentorch_payments), max(ms) - min(ms) + 1 FROM ms
"""


def _copy_sql(table: str, columns: str) -> str:
    """Copies ``first`` to ``last`` of the template's rows of ``table``."""
    names = [c.strip() for c in columns.split(",")]
    values = [f"pg_temp.remap(t.{c}, k, %(span)s)" if c in _UUIDS else f"t.{c}" for c in names]
    if table == "paymentorch_payments":  # the copy's own moment: ids and times move together
        values = [f"t.{c} + k * %(span)s * interval '1 ms'" if c.endswith("_at") else v
                  for c, v in zip(names, values, strict=True)]  # fmt: skip
    key = "id" if table == "paymentorch_payments" else "payment_id"
    order = ", ".join(f"t.{c.strip()}" for c in _ORDER.get(table, names[0]).split(","))
    return (
        "WITH template AS (SELECT id FROM paymentorch_payments ORDER BY id LIMIT %(held)s)"
        f" INSERT INTO {table} ({columns})"
        f" SELECT {', '.join(values)}"
        " FROM generate_series(%(first)s::int, %(last)s::int) AS k,"
        f" (SELECT * FROM {table} WHERE {key} IN (SELECT id FROM template)) AS t"
        f" ORDER BY k, {order}"
    )
