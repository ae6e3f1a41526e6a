"""A status transition in one statement, decided on the row it finds.

``transition_sql`` writes what ``Transition.change`` decides, in SQL: it updates the
payment only if its status is one the transition starts from (and it has no plan; a
capture's or refund's amount must be more than zero, within what it may take and exact
in the currency), and from the row it returns writes the audit entry, the outbox event
(its snapshot built from that row, as ``Payment.to_dict`` builds it), a refund's
operation, the exposure move and the journal entry with its lines. When it writes
nothing, the same statement returns the payment as it found it, and the service decides
on that without reading it again. It does not return the payment's plan: the server
would prepare that branch for every plain transition too, costing each about what the
plan's own read costs a plan. What the action does to a payment's money is not written
twice: the statement's shape is read off ``Transition.change`` of a probe payment of
amount 1, every effect of a plain transition being that amount times a constant (a
journal line of a capture or refund: what it captured or gave back times a constant,
since a payment's books read only what was captured and refunded); a refund's operation
is the probe refund's own, but for what the row and the call give it.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import attrs
from iso4217 import Currency

from paymentorch.adapters import _wire
from paymentorch.adapters._sql import (
    AUDIT_INSERT_COLUMNS,
    JOURNAL_COLUMNS,
    OPERATION_COLUMNS,
    OUTBOX_COLUMNS,
    PAYMENT_COLUMNS,
    POSTING_COLUMNS,
    REQUEST_INSERT_COLUMNS,
)
from paymentorch.adapters.postgres.statements import PAYMENT_WIDTH, row_payment
from paymentorch.domain import Payment, PaymentStatus
from paymentorch.domain.actions import action
from paymentorch.domain.money import currency_exponent
from paymentorch.domain.transitions import Stepped, Transition

_PROBE_CUSTOMER: Final = "\x00customer"
_PROBE_REASON: Final = "\x00reason"


@attrs.frozen
class Shape:
    """What a plain transition does, in units of the payment's amount.

    Attributes:
        captures: Whether it captures the whole amount.
        keeps_reason: Whether the reason becomes the payment's failure reason.
        exposure: How far the customer's exposure moves, times the amount.
        lines: The journal lines: account kind, owner (None: the customer) and amount,
            times the payment's amount.
    """

    captures: bool
    keeps_reason: bool
    exposure: Decimal
    lines: tuple[tuple[str, str | None, Decimal], ...]


def _probe(status: PaymentStatus) -> Payment:
    """A payment of amount 1 without a plan, in ``status`` (Confirmed: captured whole)."""
    at = datetime(2000, 1, 1, tzinfo=UTC)
    captured = Decimal(status is PaymentStatus.CONFIRMED)
    return Payment(
        id=UUID(int=1), customer_id=_PROBE_CUSTOMER, amount=Decimal(1), currency="USD",
        status=status, created_at=at, updated_at=at, captured_amount=captured,
    )  # fmt: skip


def shape(name: str, source: PaymentStatus) -> Shape:
    """What ``name`` does to a payment without a plan in status ``source``, as
    ``Transition.change`` decides it on a probe of amount 1."""
    probe = _probe(source)
    refunds = name == "refund"  # of the whole amount: its effects per unit refunded
    move = Transition(
        probe.id, name, frozenset({source}), at=probe.updated_at, actor_id="",
        reason=_PROBE_REASON, amount=Decimal(1) if refunds else None,
        operation_id=UUID(int=2) if refunds else None,
    )  # fmt: skip
    change = move.change(probe)
    journal = change.journal
    lines = () if journal is None else journal.lines
    return Shape(
        captures=change.payment.captured_amount == probe.amount != probe.captured_amount,
        keeps_reason=change.payment.failure_reason == _PROBE_REASON,
        exposure=change.exposure,
        lines=tuple(
            (
                line.account.kind.value,
                None if line.account.owner == _PROBE_CUSTOMER else line.account.owner,
                line.amount.normalize(),  # a factor: the amount it multiplies keeps its scale
            )
            for line in lines
        ),
    )


def _exponent(currency: str) -> str:
    """The exponent of ``currency`` (a column), as ``money_text`` scales amounts."""
    by_exponent: dict[int, list[str]] = {}
    for listed in Currency:
        exponent = currency_exponent(listed.code)
        if exponent is not None and exponent != 2:
            by_exponent.setdefault(exponent, []).append(listed.code)
    cases = " ".join(
        f"WHEN {currency} IN ({', '.join(repr(c) for c in sorted(codes))}) THEN {exponent}"
        for exponent, codes in sorted(by_exponent.items())
    )
    return f"CASE {cases} ELSE 2 END"


def _iso(column: str) -> str:
    """``datetime.isoformat`` of a UTC time: microseconds only when there are any."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN to_char({utc}, 'US') = '000000' THEN ''"
        f" ELSE to_char({utc}, '.US') END || '+00:00'"
    )


_SNAPSHOT_KEYS: Final = (
    "id", "customer_id", "amount", "currency", "status", "created_at", "updated_at",
    "version", "failure_reason", "idempotency_key", "metadata", "captured_amount",
    "refunded_amount", "has_plan",
)  # fmt: skip


def _written() -> dict[str, str]:
    """SQL for each field of the payment as the row was written (``upd``): ids, amounts
    and times as text."""
    return {
        "id": "upd.id::text",
        "customer_id": "upd.customer_id",
        "amount": "upd.amount::text",
        "currency": "upd.currency",
        "status": "upd.status",
        "created_at": _iso("upd.created_at"),
        "updated_at": "%(at_text)s::text",
        "version": "upd.version",
        "failure_reason": "upd.failure_reason",
        "idempotency_key": "upd.idempotency_key",
        "metadata": "upd.metadata",
        "captured_amount": "upd.captured_amount::text",
        "refunded_amount": "upd.refunded_amount::text",
        "pending_refunds": "upd.pending_refunds::text",
        "has_plan": "upd.has_plan",
    }


def _snapshot() -> str:
    """The event's payload: ``Payment.to_dict()`` of the row as written."""
    values = {
        **_written(),  # to_dict gives the sums at the currency's scale
        "captured_amount": "round(upd.captured_amount, upd.exponent)::text",
        "refunded_amount": "round(upd.refunded_amount, upd.exponent)::text",
    }
    return "jsonb_build_object(" + ", ".join(f"'{k}', {values[k]}" for k in _SNAPSHOT_KEYS) + ")"


_RETURNED: Final = (
    ", ".join(f"p.{c.strip()}" for c in PAYMENT_COLUMNS.split(","))
    + f", {_exponent('p.currency')} AS exponent"
)


# What a refund's operation takes from the returned row and the parameters; the rest
# is the probe refund's own (``Transition.refund_of``), so nothing is written twice.
_OPERATION_GIVEN: Final = {
    "id": ("%(operation)s", "%(operation)s::text"),
    "payment_id": ("upd.id", "upd.id::text"),
    "amount": ("upd.taken", "upd.taken::text"),
    "currency": ("upd.currency", "upd.currency"),
    "reason": ("%(reason)s", "%(reason)s::text"),
    "created_at": ("%(at)s", "%(at_text)s::text"),
    "updated_at": ("%(at)s", "%(at_text)s::text"),
}


def _literal(value: object) -> str:
    """``value`` (None, a truth value, a number or text) as an SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _refund_operation() -> tuple[str, str]:
    """A refund completed here: its row's values in ``OPERATION_COLUMNS`` order, and its
    ``Operation.to_dict()`` for the event, as SQL over the returned row ``upd``.

    Raises:
        ValueError: ``Operation`` has fields the statement does not write.
    """
    probe = _probe(PaymentStatus.CONFIRMED)
    refund = Transition(
        probe.id, "refund", frozenset({PaymentStatus.CONFIRMED}), at=probe.updated_at,
        actor_id="", amount=probe.amount, operation_id=UUID(int=2),
    ).refund_of(probe)  # fmt: skip
    shown = refund.to_dict()
    columns = [c.strip() for c in OPERATION_COLUMNS.split(",")]
    if set(columns) != set(shown):
        raise ValueError("Operation.to_dict has fields the refund's statement does not build")
    row = [
        _OPERATION_GIVEN[c][0] if c in _OPERATION_GIVEN else _literal(getattr(refund, c))
        for c in columns
    ]
    event = [
        f"'{k}', {_OPERATION_GIVEN[k][1] if k in _OPERATION_GIVEN else _literal(v)}"
        for k, v in shown.items()
    ]
    return ", ".join(row), "jsonb_build_object(" + ", ".join(event) + ")"


def _update(name: str, found: Shape) -> tuple[str, str, str, str]:
    """The payment's update (to its ``SET``), the bound of a capture's or refund's
    amount (to add to its ``WHERE``), what it returns, and what the row locked first
    (``old``) gives it: a refund's amount, read from the row as locked, since an
    ``UPDATE`` returns only the row as written."""
    exponent = _exponent("p.currency")
    amount = f"round(%(taken)s::numeric, {exponent})"  # exact, once bounded
    exact = f"%(taken)s::numeric > 0 AND min_scale(%(taken)s::numeric) <= {exponent}"
    status, captured, refunded, bound, locked = "%(target)s", "p.captured_amount", "", "", ""
    returned = _RETURNED
    if found.captures:
        captured = "p.amount"
    if name == "capture":
        captured = f"COALESCE({amount}, p.amount)"
        bound = f" AND (%(taken)s::numeric IS NULL OR ({exact} AND %(taken)s <= p.amount))"
    if name == "refund":  # Refunded once everything captured is, and nothing more is held
        left = f"round(p.captured_amount - p.refunded_amount - p.pending_refunds, {exponent})"
        taken = f"COALESCE({amount}, {left})"  # what is asked, or what is left
        locked = f", {taken} AS taken"
        status = """CASE WHEN p.refunded_amount + old.taken = p.captured_amount
        AND p.pending_refunds = 0 THEN %(target)s ELSE p.status END"""
        refunded = ", refunded_amount = p.refunded_amount + old.taken"
        bound = f""" AND (%(taken)s::numeric IS NULL OR {exact}) AND {taken} > 0
    AND p.refunded_amount + p.pending_refunds + {taken} <= p.captured_amount"""
        returned += ", old.taken"
    reason = "%(reason)s" if found.keeps_reason else "NULL"
    head = f"""
  UPDATE paymentorch_payments p
  SET status = {status}, version = p.version + 1, updated_at = %(at)s,
      failure_reason = {reason}, captured_amount = {captured}{refunded}"""
    return head, bound, returned, locked


def _encoded() -> str:
    """The payment as the row was written, as ``paymentorch.adapters._wire.encode`` writes
    it: what a held key returns (``find_request``)."""
    values = _written()
    fields = ", ".join(values[name] for name in _wire.FIELDS)  # KeyError: a field left out
    return f"upd.version::text || '|' || json_build_array({fields})::text"


@functools.cache
def transition_sql(name: str, sources: frozenset[PaymentStatus], keyed: bool = False) -> str:
    """The statement of ``name`` from ``sources`` (``keyed``: claiming a key with the
    payment after it; a held key fails the whole statement), what the action always
    writes (statuses, names, factors) in it as literals: a parameter costs the driver
    and the server on every call, a literal only when the statement is prepared.

    It returns one row, ``written`` first: true and the payment as written
    (``PAYMENT_COLUMNS``), a refund's amount last; or, when the payment has a plan or is
    in another status, false and the payment as the statement found it; or no row when
    the payment is missing. Several sources lock the row first, to know which one the
    audit entry starts from; so does a refund, to know what is left.

    Raises:
        ValueError: the action does not do the same from each of ``sources``.
    """
    shapes = {shape(name, source) for source in sources}
    if len(shapes) != 1:
        raise ValueError(f"{name} does not do the same from each of {sorted(sources)}")
    (found,) = shapes
    if set(_SNAPSHOT_KEYS) != set(_probe(PaymentStatus.PENDING).to_dict()):
        raise ValueError("Payment.to_dict has fields the snapshot does not build")
    table = action(name)
    refunds = name == "refund"
    target = PaymentStatus.REFUNDED if refunds else table.target
    if target is None:
        raise ValueError(f"{name} is not a status transition")
    head, bound, returned, locked = _update(name, found)
    operation, shown = _refund_operation() if refunds else ("", "NULL")
    if len(sources) == 1 and not refunds:
        sql = f"""
WITH upd AS ({head}
  WHERE p.id = %(id)s AND p.status = %(source)s AND NOT p.has_plan{bound}
  RETURNING {returned}, %(source)s::text AS from_status"""
    else:
        sql = f"""
WITH old AS (
  SELECT id, status{locked} FROM paymentorch_payments p
  WHERE id = %(id)s AND status = ANY(%(sources)s) AND NOT has_plan{bound}
  FOR UPDATE
), upd AS ({head}
  FROM old WHERE p.id = old.id
  RETURNING {returned}, old.status AS from_status"""
    sql += f"""
), audit AS (
  INSERT INTO paymentorch_audit_entries ({AUDIT_INSERT_COLUMNS})
  SELECT upd.id, %(audit)s, upd.from_status, upd.status, %(actor)s, %(at)s, %(reason)s,
         %(correlation)s, %(event)s FROM upd
), event AS (
  INSERT INTO paymentorch_outbox ({OUTBOX_COLUMNS})
  SELECT %(event)s, upd.id, %(type)s, %(at)s, {_snapshot()}, %(actor)s, %(correlation)s,
         {shown} FROM upd"""
    if refunds:
        sql += f"""
), operation AS (
  INSERT INTO paymentorch_operations ({OPERATION_COLUMNS})
  SELECT {operation} FROM upd"""
    if keyed:  # what was asked, as ``request_key`` writes it: a capture says what it took
        took = (
            "round(upd.captured_amount, upd.exponent)::text" if name == "capture" else "NULL::text"
        )
        sql += f"""
), request AS (
  INSERT INTO paymentorch_request_keys ({REQUEST_INSERT_COLUMNS})
  SELECT %(actor)s, %(key)s, upd.id, %(action)s,
         '{{"amount":' || COALESCE(to_json({took})::text, 'null') || ',"reason":'
           || %(reason_json)s::text || '}}',
         {_encoded()}, %(at)s FROM upd"""
    if found.exposure:
        sql += """
), exposure AS (
  INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)
  SELECT upd.customer_id, upd.currency, GREATEST(upd.amount * %(exposure)s, 0) FROM upd
  ON CONFLICT (customer_id, currency)
  DO UPDATE SET amount = GREATEST(e.amount + (SELECT amount FROM upd) * %(exposure)s, 0)"""
    per = "taken" if refunds else "captured_amount" if found.captures else "amount"
    if found.lines:
        sql += f"""
), entry AS (
  INSERT INTO paymentorch_journal_entries ({JOURNAL_COLUMNS})
  SELECT %(entry)s, upd.id, {"%(operation)s" if refunds else "NULL"}, %(ledger)s, %(at)s,
         %(correlation)s FROM upd
  RETURNING id, payment_id
), lines AS (
  INSERT INTO paymentorch_postings ({POSTING_COLUMNS})
  SELECT entry.id, line.number, entry.payment_id, line.value ->> 0,
         COALESCE(line.value ->> 1, upd.customer_id), upd.currency,
         (line.value ->> 2)::numeric * upd.{per}
  FROM entry, upd, jsonb_array_elements(%(lines)s::jsonb) WITH ORDINALITY AS line(value, number)"""
    taken, unknown = (", upd.taken", ", NULL") if refunds else ("", "")
    sql += f"""
)
SELECT true AS written, {", ".join(c.strip() for c in PAYMENT_COLUMNS.split(","))}{taken} FROM upd
UNION ALL
SELECT false, {", ".join("found." + c.strip() for c in PAYMENT_COLUMNS.split(","))}{unknown}
FROM paymentorch_payments found
WHERE found.id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd)
"""
    constants: dict[str, Any] = {
        "action": name,
        "target": target.value,
        "audit": table.audit,
        "type": table.event,
        "ledger": table.ledger,
        "exposure": found.exposure,
        "lines": json.dumps([[k, o, str(a)] for k, o, a in found.lines], separators=(",", ":")),
    }
    if len(sources) == 1 and not refunds:
        (source,) = sources
        constants["source"] = source.value
    else:
        constants["sources"] = sorted(s.value for s in sources)
    for key, value in constants.items():
        sql = sql.replace(f"%({key})s", _constant(value))
    return sql


def _constant(value: object) -> str:
    """A constant of a transition's statement as an SQL literal: a list of text as an
    array, a factor as a number."""
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::text[]"
    if isinstance(value, Decimal):
        return f"({value})::numeric"
    return _literal(value)


def transition_params(move: Transition) -> tuple[str, dict[str, Any]]:
    """The statement of ``move`` and its parameters."""
    sql = transition_sql(move.action, move.sources, move.key is not None)
    return sql, {
        "id": move.payment_id,
        "at": move.at,
        "at_text": move.at.isoformat(),
        "reason": move.reason,
        "actor": move.actor_id,
        "correlation": move.correlation_id,
        "event": move.event_id,
        "entry": move.entry_id,
        "taken": move.amount,
        "operation": move.operation_id,
        "key": move.key,
        "reason_json": None if move.key is None else json.dumps(move.reason),
    }


def stepped(move: Transition, row: tuple[Any, ...] | None) -> Stepped:
    """What a row of ``move``'s statement (or no row) says."""
    if row is None:
        return Stepped()
    payment = row_payment(row[1 : 1 + PAYMENT_WIDTH])
    if not row[0]:
        return Stepped(found=payment)
    refund = move.refund_of(payment, row[-1]) if move.action == "refund" else None
    return Stepped(written=payment, operation=refund)
