"""What both PostgreSQL stores share: statements, and values to and from rows.

Creating and transitioning are each one statement: a data-modifying CTE writes the
payment, its audit entry and its outbox event together, in autocommit, so a change is
one round trip and one transaction.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TypeVar
from uuid import UUID

from paymentorch.adapters._require import driver

driver("psycopg", "postgres")
driver("psycopg_pool", "postgres")

from psycopg.types.json import Jsonb  # noqa: E402

from paymentorch.adapters._sql import (  # noqa: E402
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
    installment_values,
    journal_rows,
    key_scope,
    message_from_row,
    operation_from_row,
    operation_scope,
    payment_from_row,
    plain,
    plan_from_rows,
    plan_values,
    request_values,
)
from paymentorch.domain import (  # noqa: E402
    AuditEntry,
    Change,
    Operation,
    Payment,
    PaymentEvent,
    PaymentStatus,
)
from paymentorch.domain.cursor import Keyset  # noqa: E402
from paymentorch.domain.ledger import JournalEntry  # noqa: E402
from paymentorch.domain.outbox import OutboxMessage  # noqa: E402
from paymentorch.domain.plans import Plan  # noqa: E402

logger = logging.getLogger("paymentorch.postgres")
T = TypeVar("T")

KEY_INDEX: Final = "paymentorch_payments_idempotency"
READ_RETRIES: Final = (0.05, 0.2, 0.5)


def _recorded(
    changed: str, *, operation: bool, exposure: bool, request: bool, journal: bool = False,
    events: int = 0, plan: bool = False,
) -> str:  # fmt: skip
    """The CTE tail that writes the audit entry, the event and ``events`` more after it,
    and (with ``operation``) the operation, (with ``exposure``) the customer's exposure
    move, (with ``request``) the transition's key, (with ``journal``) the journal entry
    and its lines and (with ``plan``) the payment's plan, when ``changed`` has a row."""
    also = ""
    if operation:
        also += f"""
), operation AS (
  INSERT INTO paymentorch_operations ({OPERATION_INSERT_COLUMNS})
  SELECT {", ".join(["%s"] * 19)} FROM {changed}"""
    if exposure:  # a move no credit limit checks: the one statement carries it
        also += f"""
), exposure AS (
  INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)
  SELECT %s, %s, GREATEST(%s::numeric, 0) FROM {changed}
  ON CONFLICT (customer_id, currency) DO UPDATE SET amount = GREATEST(e.amount + %s::numeric, 0)"""
    if request:  # a held key fails the whole statement: nothing of the change is written
        also += f"""
), request AS (
  INSERT INTO paymentorch_request_keys ({REQUEST_INSERT_COLUMNS})
  SELECT %s, %s, %s, %s, %s, %s, %s FROM {changed}"""
    if journal:  # no balance row: posting to a house account locks nothing shared
        # The lines come as one JSON parameter (``entry_params``): seven arrays cost the
        # driver three times as much to adapt, and the server more to read.
        also += f"""
), entry AS (
  INSERT INTO paymentorch_journal_entries ({JOURNAL_COLUMNS})
  SELECT %s, %s, %s, %s, %s, %s FROM {changed}
  RETURNING id, payment_id
), lines AS (
  INSERT INTO paymentorch_postings ({POSTING_COLUMNS})
  SELECT entry.id, line.number, entry.payment_id, line.value ->> 0, line.value ->> 1,
         line.value ->> 2, (line.value ->> 3)::numeric
  FROM entry, jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS line(value, number)"""
    if plan:
        also += f"""
), {plan_writes(changed)}"""
    if events:  # one insert, in order: the outbox's sequence orders a payment's events
        rows = ",\n    ".join(f"({n}, {_EVENT_VALUES})" for n in range(events + 1))
        event = f"""
  SELECT {", ".join("e." + c for c in OUTBOX_COLUMNS.split(", "))}
  FROM {changed}, (VALUES {rows}) AS e(n, {OUTBOX_COLUMNS}) ORDER BY e.n"""
    else:
        event = f"""
  SELECT %s, %s, %s, %s, %s, %s, %s, %s FROM {changed}"""
    return f"""
), audit AS (
  INSERT INTO paymentorch_audit_entries ({AUDIT_INSERT_COLUMNS})
  SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s FROM {changed}
), event AS (
  INSERT INTO paymentorch_outbox ({OUTBOX_COLUMNS}){event}{also}
)
SELECT count(*) FROM {changed}
"""


_EVENT_VALUES: Final = (
    "%s::uuid, %s::uuid, %s::text, %s::timestamptz, %s::jsonb, %s::text, %s::text, %s::jsonb"
)
"""An outbox row's parameters (``event_row``) among others in a ``VALUES`` list: typed,
as a ``NULL`` there has no column to take its type from."""


_INSERT = f"""
WITH ins AS (
  INSERT INTO paymentorch_payments ({PAYMENT_INSERT_COLUMNS})
  VALUES ({", ".join(["%s"] * 16)})
  ON CONFLICT (idempotency_scope, idempotency_key) DO NOTHING
  RETURNING id"""
_GUARDED_INSERT = f"""
WITH exposure AS (
  INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)
  VALUES (%s, %s, GREATEST(%s::numeric, 0))
  ON CONFLICT (customer_id, currency) DO UPDATE SET amount = GREATEST(e.amount + %s::numeric, 0)
  WHERE e.amount + %s::numeric <= %s::numeric
  RETURNING amount
), ins AS (
  INSERT INTO paymentorch_payments ({PAYMENT_INSERT_COLUMNS})
  SELECT {", ".join(["%s"] * 16)} FROM exposure
  RETURNING id"""
"""A creation whose exposure grows under a credit limit: the exposure row first (locked
until the statement commits), the payment only if the limit let it grow. A held key
fails the whole statement (``KEY_INDEX``), so the exposure moves back with it."""
_UPDATE = """
WITH upd AS (
  UPDATE paymentorch_payments
  SET status = %s, version = %s, updated_at = %s, failure_reason = %s,
      captured_amount = %s, refunded_amount = %s, pending_refunds = %s
  WHERE id = %s AND status = %s AND version = %s
    AND refunded_amount + pending_refunds + %s <= captured_amount
  RETURNING id"""


@functools.cache
def create_sql(
    *, operation: bool, exposure: bool, events: int = 0, plan: bool = False,
    guarded: bool = False,
) -> str:  # fmt: skip
    """A creation in one statement: the payment, its entry and event, and as asked its
    operation, exposure move, further events and plan; ``guarded``, after its exposure's
    move under a credit limit (``guarded_params`` first)."""
    return (_GUARDED_INSERT if guarded else _INSERT) + _recorded(
        "ins", operation=operation, exposure=exposure, request=False, events=events, plan=plan
    )


def guarded_params(change: Change) -> tuple[Any, ...]:
    """The parameters of a guarded creation's exposure move (``create_sql``)."""
    p, delta = change.payment, change.exposure
    return (p.customer_id, p.currency, delta, delta, delta, change.growth_limit)


@functools.cache
def apply_sql(
    *, operation: bool, exposure: bool, request: bool, journal: bool, events: int = 0,
    plan: bool = False,
) -> str:  # fmt: skip
    """A guarded change in one statement, as ``create_sql`` for an update; with
    ``request`` it claims the transition's key too, with ``journal`` it posts."""
    return _UPDATE + _recorded(
        "upd", operation=operation, exposure=exposure, request=request, journal=journal,
        events=events, plan=plan,
    )  # fmt: skip


def inline_exposure(change: Change) -> bool:
    """Whether the change's exposure moves inside its one statement: it moves, and no
    credit limit must check it first."""
    return bool(change.exposure) and change.growth_limit is None


def statement_params(change: Change, head: tuple[Any, ...]) -> tuple[Any, ...]:
    """The parameters of ``create_sql`` or ``apply_sql`` after ``head`` (the payment's),
    for the statement that writes all of ``change``: its further events and plan too."""
    params = (*head, *audit_row(change.audit), change.event.id, *event_row(change.event))
    for event in change.more_events:
        params = (*params, *event_row(event))
    if change.operation is not None:
        params = (*params, *operation_row(change))
    p = change.payment
    if inline_exposure(change):
        params = (*params, p.customer_id, p.currency, change.exposure, change.exposure)
    if change.request is not None:
        scope, key, action, asked, payment = request_values(change, change.request)
        params = (*params, scope, key, p.id, action, asked, payment, p.updated_at)
    if change.journal is not None:
        params = (*params, *entry_params(change.journal))
    if change.plan is not None:
        params = (*params, *plan_row(change.plan))
    return params


def entry_params(entry: JournalEntry) -> tuple[Any, ...]:
    """A journal entry's row (``JOURNAL_COLUMNS``) and, as the last parameter, its lines
    in order as one JSON array of ``[account kind, owner, currency, amount]``."""
    lines = [
        [line.account.kind.value, line.account.owner, line.account.currency, str(line.amount)]
        for line in entry.lines
    ]
    return (
        entry.id, entry.payment_id, entry.operation_id, entry.kind, entry.at,
        entry.correlation_id, json.dumps(lines, separators=(",", ":")),
    )  # fmt: skip


_POSTING_ARRAYS: Final = (
    "%s::uuid[], %s::int[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::numeric[]"
)
POST_ENTRIES: Final = f"""
INSERT INTO paymentorch_journal_entries ({JOURNAL_COLUMNS})
SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[], %s::timestamptz[],
                     %s::text[])
"""
POST_LINES: Final = f"""
INSERT INTO paymentorch_postings ({POSTING_COLUMNS}) SELECT * FROM unnest({_POSTING_ARRAYS})
"""


def journal_values(entry: JournalEntry) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """An entry's row and its lines' rows, as psycopg takes them."""
    return journal_rows(entry, uuid=same, time=same, money=same)


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as ``width`` column lists, for ``unnest``."""
    found: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(found, row, strict=True):
            column.append(value)
    return found


SETTLE: Final = """
UPDATE paymentorch_operations SET status = %s, processor = %s, reference = %s,
  attempts = %s, error = %s, due_at = %s, lookups = %s, updated_at = %s,
  processor_amount = %s, lease_until = NULL
WHERE id = %s AND status = %s AND attempts = %s AND lookups = %s
"""

APPLY_MANY: Final = f"""
WITH input AS (
  SELECT * FROM unnest(
    %s::uuid[], %s::text[], %s::int[], %s::timestamptz[], %s::text[],
    %s::text[], %s::text[], %s::text[], %s::text[], %s::uuid[], %s::text[], %s::jsonb[],
    %s::numeric[]
  ) AS t(id, status, version, at, failure_reason,
         action, actor_id, reason, correlation_id, event_id, type, payload, captured)
), upd AS (
  UPDATE paymentorch_payments p
  SET status = input.status, version = input.version, updated_at = input.at,
      failure_reason = input.failure_reason, captured_amount = input.captured
  FROM input
  WHERE p.id = input.id AND p.status = %s AND p.version = input.version - 1
  RETURNING p.id
), audit AS (
  INSERT INTO paymentorch_audit_entries ({AUDIT_INSERT_COLUMNS})
  SELECT input.id, input.action, %s, input.status, input.actor_id, input.at,
         input.reason, input.correlation_id, input.event_id
  FROM upd JOIN input ON input.id = upd.id
), event AS (
  INSERT INTO paymentorch_outbox ({OUTBOX_COLUMNS})
  SELECT input.event_id, input.id, input.type, input.at, input.payload,
         input.actor_id, input.correlation_id, NULL
  FROM upd JOIN input ON input.id = upd.id
)
SELECT id FROM upd
"""

SELECT: Final = f"SELECT {PAYMENT_COLUMNS} FROM paymentorch_payments"
PAYMENT_WIDTH: Final = len(PAYMENT_COLUMNS.split(", "))
"""How many columns a payment takes in a row."""

CLAIM: Final = f"""
WITH due AS (
  SELECT o.seq FROM paymentorch_outbox o
  WHERE o.state = 'pending'
    AND (o.available_at IS NULL OR o.available_at <= %(now)s)
    AND (o.lease_until IS NULL OR o.lease_until <= %(now)s)
    AND NOT EXISTS (
      SELECT 1 FROM paymentorch_outbox e
      WHERE e.payment_id = o.payment_id AND e.state = 'pending' AND e.seq < o.seq)
  ORDER BY o.seq
  LIMIT %(limit)s
  FOR UPDATE SKIP LOCKED
)
UPDATE paymentorch_outbox o SET lease_until = %(lease)s
FROM due WHERE o.seq = due.seq
RETURNING {", ".join("o." + c.strip() for c in OUTBOX_READ.split(","))}, o.seq
"""


_INSTALLMENT_DATA: Final = INSTALLMENT_COLUMNS.split(", ", 1)[1].split(", ")
_FEE_DATA: Final = LATE_FEE_COLUMNS.split(", ")[2:]  # without payment_id and seq


_INSTALLMENT_TYPES: Final = (
    "int", "numeric", "timestamptz", "text", "timestamptz", "numeric", "int", "timestamptz",
    "text", "bigint", "int",
)  # fmt: skip
_FEE_TYPES: Final = ("int", "int", "numeric", "timestamptz", "timestamptz", "timestamptz")


def _elements(types: Sequence[str]) -> str:
    """The columns of ``x.v``, a JSON array's element, each cast to its type."""
    return ", ".join(f"(x.v ->> {n})::{t}" for n, t in enumerate(types))


def plan_writes(changed: str | None = None) -> str:
    """The CTEs ``plan``, ``installments`` and ``fees`` (the last one left open) that
    write a plan with its installments and fees (``plan_row``'s parameters), leaving
    alone the rows that did not change; with ``changed``, only when that CTE has a row.
    The installments and the fees come as one JSON array each: a dozen arrays cost the
    driver several times as much to adapt."""
    head = ", ".join(["%s"] * 9)
    plan = f"VALUES ({head})" if changed is None else f"SELECT {head} FROM {changed}"
    rows = "" if changed is None else f"{changed}, "
    return f"""plan AS (
  INSERT INTO paymentorch_plans AS p ({PLAN_COLUMNS}) {plan}
  ON CONFLICT (payment_id) DO UPDATE SET status = EXCLUDED.status,
    collection_stopped = EXCLUDED.collection_stopped
  WHERE (p.status, p.collection_stopped) IS DISTINCT FROM
    (EXCLUDED.status, EXCLUDED.collection_stopped)
), installments AS (
  INSERT INTO paymentorch_installments AS i ({INSTALLMENT_COLUMNS})
  SELECT %s, {_elements(_INSTALLMENT_TYPES)}
  FROM {rows}jsonb_array_elements(%s::jsonb) AS x(v)
  ON CONFLICT (payment_id, number) DO UPDATE SET {INSTALLMENT_UPDATES}
  WHERE ({", ".join("i." + c for c in _INSTALLMENT_DATA)}) IS DISTINCT FROM
    ({", ".join("EXCLUDED." + c for c in _INSTALLMENT_DATA)})
), fees AS (
  INSERT INTO paymentorch_late_fees AS f ({LATE_FEE_COLUMNS})
  SELECT %s, {_elements(_FEE_TYPES)} FROM {rows}jsonb_array_elements(%s::jsonb) AS x(v)
  ON CONFLICT (payment_id, seq) DO UPDATE SET paid_at = EXCLUDED.paid_at,
    waived_at = EXCLUDED.waived_at
  WHERE (f.paid_at, f.waived_at) IS DISTINCT FROM (EXCLUDED.paid_at, EXCLUDED.waived_at)"""


WRITE_PLAN: Final = f"WITH {plan_writes()}\n)\nSELECT 1"
"""A plan with its installments and fees, in one statement; rows that did not change are
not written again."""


def plan_read(payment: str) -> str:
    """A query of the plan of ``payment`` (an SQL expression) with its installments and
    fees in one row, each of their columns an array (``plan_of`` reads it)."""
    return f"""
SELECT {", ".join("pl." + c for c in PLAN_COLUMNS.split(", ")[1:])},
  {", ".join(f"i.{c}" for c in _INSTALLMENT_DATA)}, {", ".join(f"f.{c}" for c in _FEE_DATA)}
FROM paymentorch_plans pl
CROSS JOIN LATERAL (
  SELECT {", ".join(f"array_agg({c} ORDER BY number) AS {c}" for c in _INSTALLMENT_DATA)}
  FROM paymentorch_installments WHERE payment_id = pl.payment_id
) i
CROSS JOIN LATERAL (
  SELECT {", ".join(f"array_agg({c} ORDER BY seq) AS {c}" for c in _FEE_DATA)}
  FROM paymentorch_late_fees WHERE payment_id = pl.payment_id
) f
WHERE pl.payment_id = {payment}
"""


READ_PLAN: Final = plan_read("%s")
"""A plan with its installments and fees in one row: each of their columns an array."""


READ_WITH_PLAN: Final = f"""
SELECT {", ".join("p." + c for c in PAYMENT_COLUMNS.split(", "))}, r.*
FROM paymentorch_payments p
LEFT JOIN LATERAL ({plan_read("p.id")}) r ON p.has_plan
WHERE p.id = %s
"""
"""A payment and its plan (as ``READ_PLAN`` reads it, after the payment's columns) in
one row: one statement, so both as of one moment."""


def plan_row(plan: Plan) -> tuple[Any, ...]:
    """``WRITE_PLAN``'s parameters."""
    pid = plan.payment_id
    installments = [installment_values(i) for i in plan.installments]
    fees = [
        (seq, f.installment, f.amount, f.charged_at, f.paid_at, f.waived_at)
        for seq, f in enumerate(plan.late_fees, start=1)
    ]
    return (pid, *plan_values(plan), pid, _json_rows(installments), pid, _json_rows(fees))


def _json_rows(rows: list[tuple[Any, ...]]) -> str:
    """Rows as one JSON array of arrays; times and amounts as text the server reads
    exactly (as psycopg writes them)."""
    return json.dumps(rows, separators=(",", ":"), default=_text)


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a value of a plan's rows")


def plan_of(payment_id: UUID, row: Sequence[Any]) -> Plan:
    """The plan in a row of ``READ_PLAN``."""
    width = len(PLAN_COLUMNS.split(", ")) - 1
    head, rest = row[:width], row[width:]
    installments, fees = rest[: len(_INSTALLMENT_DATA)], rest[len(_INSTALLMENT_DATA) :]
    return plan_from_rows(
        payment_id,
        tuple(head),
        list(zip(*installments, strict=True)) if installments[0] is not None else [],
        list(zip(*fees, strict=True)) if fees[0] is not None else [],
        time=same,
    )


MOVE_EXPOSURES: Final = """
WITH moves AS (
  SELECT customer_id, currency, sum(delta) AS delta
  FROM unnest(%s::text[], %s::text[], %s::numeric[]) AS m(customer_id, currency, delta)
  GROUP BY customer_id, currency
)
INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)
SELECT customer_id, currency, GREATEST(delta, 0) FROM moves
ON CONFLICT (customer_id, currency) DO UPDATE SET amount = GREATEST(e.amount + (
  SELECT delta FROM moves m
  WHERE m.customer_id = EXCLUDED.customer_id AND m.currency = EXCLUDED.currency
), 0)
"""
"""Many changes' exposure moves, summed per customer and currency, in one statement."""
MOVE_EXPOSURE: Final = """
INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)
VALUES (%(customer)s, %(currency)s, GREATEST(%(delta)s::numeric, 0))
ON CONFLICT (customer_id, currency) DO UPDATE SET amount = GREATEST(e.amount + %(delta)s, 0)
WHERE %(limit)s::numeric IS NULL OR e.amount + %(delta)s <= %(limit)s::numeric
RETURNING amount
"""
INSERT_EVENT: Final = (
    f"INSERT INTO paymentorch_outbox ({OUTBOX_COLUMNS}) VALUES ({', '.join(['%s'] * 8)})"
)
READ_EXPOSURE: Final = (
    "SELECT amount FROM paymentorch_exposure WHERE customer_id = %s AND currency = %s"
)

# A pending operation leased before and never settled: its worker may have sent it and
# stopped before recording the answer, so its outcome is unknown until looked up.
IN_DOUBT: Final = "o.status = 'pending' AND o.lease_until IS NOT NULL"
CLAIM_OPERATIONS: Final = f"""
WITH due AS (
  SELECT id FROM paymentorch_operations
  WHERE status IN ('pending', 'unknown') AND due_at <= %(now)s
    AND (lease_until IS NULL OR lease_until <= %(now)s)
  ORDER BY due_at, id
  LIMIT %(limit)s
  FOR UPDATE SKIP LOCKED
)
UPDATE paymentorch_operations o SET lease_until = %(lease)s,
  status = CASE WHEN {IN_DOUBT} THEN 'unknown' ELSE o.status END,
  error = CASE WHEN {IN_DOUBT} THEN %(in_doubt)s ELSE o.error END
FROM due WHERE o.id = due.id
RETURNING {", ".join("o." + c.strip() for c in OPERATION_COLUMNS.split(","))}
"""


def _metadata(value: Mapping[str, str]) -> Jsonb | str:
    """Metadata for a jsonb column; the usual empty one as a literal, with no JSON encoding."""
    return Jsonb(dict(value)) if value else "{}"


def payment_row(change: Change) -> tuple[Any, ...]:
    """A new payment's values in ``PAYMENT_INSERT_COLUMNS`` order."""
    p = change.payment
    return (
        p.id, p.customer_id, p.amount, p.currency, p.status.value, p.created_at,
        p.updated_at, p.version, p.failure_reason, p.idempotency_key, _metadata(p.metadata),
        p.captured_amount, p.refunded_amount, p.pending_refunds, p.has_plan, key_scope(change),
    )  # fmt: skip


def update_row(change: Change, expected: PaymentStatus) -> tuple[Any, ...]:
    """``APPLY``'s parameters: the new state, and the guards it is written under."""
    p, guard = change.payment, change.guard
    return (
        p.status.value, p.version, p.updated_at, p.failure_reason, p.captured_amount,
        p.refunded_amount, p.pending_refunds, p.id, expected.value, guard.version,
        guard.refund_room,
    )  # fmt: skip


def operation_row(change: Change) -> tuple[Any, ...]:
    """A new operation's values in ``OPERATION_INSERT_COLUMNS`` order."""
    o = change.operation
    assert o is not None  # noqa: S101 - called only for changes that carry one
    return (
        o.id, o.payment_id, o.kind.value, o.amount, o.currency, o.status.value, o.created_at,
        o.updated_at, o.processor, o.reference, o.attempts, o.reason, o.idempotency_key,
        o.error, o.due_at, o.lookups, o.installment, o.processor_amount, operation_scope(change),
    )  # fmt: skip


def settle_row(previous: Operation, o: Operation) -> tuple[Any, ...]:
    """``SETTLE``'s parameters: the operation's new state, guarded by its previous one."""
    return (
        o.status.value, o.processor, o.reference, o.attempts, o.error, o.due_at, o.lookups,
        o.updated_at, o.processor_amount, o.id, previous.status.value, previous.attempts,
        previous.lookups,
    )  # fmt: skip


def audit_row(a: AuditEntry) -> tuple[Any, ...]:
    """An audit entry's values in ``AUDIT_COLUMNS`` order."""
    return (
        a.payment_id, a.action, a.from_status.value if a.from_status else None,
        a.to_status.value, a.actor_id, a.at, a.reason, a.correlation_id,
    )  # fmt: skip


def event_row(e: PaymentEvent) -> tuple[Any, ...]:
    """An event's values in ``OUTBOX_COLUMNS`` order."""
    return (
        e.id, e.payment_id, e.type, e.occurred_at, Jsonb(plain(e.payment)), e.actor_id,
        e.correlation_id, None if e.operation is None else Jsonb(dict(e.operation)),
    )  # fmt: skip


_PLACEHOLDER: Final = re.compile(r"%(?:\((\w+)\))?s|%%")


@functools.lru_cache(maxsize=128)
def numbered(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """``sql`` with its placeholders numbered as the server takes them (``$1``...), and
    its parameters' names in that order (None: they are positional).

    psycopg numbers a statement's placeholders on every execution when the statement is
    longer than 4 KiB or has more than 50 parameters (it caches only shorter ones): half
    a millisecond for a plan's. The store's long statements are numbered once, here, and
    run on a raw cursor (``run_numbered``)."""
    names: dict[str, int] = {}
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        name = match.group(1)
        if match.group(0) == "%%":
            return "%"
        if name is None:
            count += 1
            return f"${count}"
        return f"${names.setdefault(name, len(names) + 1)}"

    text = _PLACEHOLDER.sub(number, sql)
    if names and count:
        raise ValueError("a statement with both named and positional placeholders")
    return text, (tuple(names) if names else None)


def numbered_params(
    names: tuple[str, ...] | None, params: Sequence[Any] | Mapping[str, Any]
) -> Sequence[Any]:
    """``params`` in the order of ``numbered``'s placeholders."""
    if isinstance(params, Mapping):
        return [params[name] for name in names or ()]
    return params


def same(value: T) -> T:
    return value


def row_payment(row: tuple[Any, ...]) -> Payment:
    return payment_from_row(row, uuid=same, time=same, metadata=same)


def row_operation(row: tuple[Any, ...]) -> Operation:
    return operation_from_row(row, uuid=same, time=same)


def row_message(row: tuple[Any, ...]) -> OutboxMessage:
    return message_from_row(row, uuid=same, time=same, payload=same)


def where_filters(
    status: PaymentStatus | None,
    customer_id: str | None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause and parameters for the filters that are set."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = %s")
        params.append(status.value)
    if customer_id is not None:
        where.append("customer_id = %s")
        params.append(customer_id)
    if created_from is not None:
        where.append("created_at >= %s")
        params.append(created_from)
    if created_to is not None:
        where.append("created_at < %s")
        params.append(created_to)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def list_query(  # noqa: PLR0917 - the port's listing arguments, in its order
    status: PaymentStatus | None,
    customer_id: str | None,
    limit: int,
    after: Keyset | None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[str, list[Any]]:
    """The keyset query: the ``(created_at, id)`` row comparison walks the index."""
    where, params = where_filters(status, customer_id, created_from, created_to)
    if after is not None:
        where += (" AND " if where else " WHERE ") + "(created_at, id) < (%s, %s)"
        params += [after[0], after[1]]
    return SELECT + where + " ORDER BY created_at DESC, id DESC LIMIT %s", [*params, limit]


def conninfo(url: str) -> str:
    """The libpq URL for a paymentorch URL (``postgresql+psycopg://`` is accepted)."""
    return "postgresql://" + url.partition("://")[2]
