"""A payment as one line of text, every field exact: ``<version>|<JSON>``.

The Redis cache's entries are in this form, and so is the payment a keyed transition
stored with its key (``paymentorch_request_keys``).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import attrs

from paymentorch.domain import Payment, PaymentStatus

FIELDS: Final = (
    "id", "customer_id", "amount", "currency", "status", "created_at", "updated_at",
    "version", "failure_reason", "idempotency_key", "metadata", "captured_amount",
    "refunded_amount", "pending_refunds", "has_plan",
)  # fmt: skip
"""The payment's fields in the order ``encode`` writes them (a store that encodes in SQL
lists them in this order too)."""

if set(FIELDS) != {f.name for f in attrs.fields(Payment)}:
    raise ImportError("paymentorch.adapters._wire does not encode every field of Payment")


def encode(payment: Payment) -> str:
    """``<version>|<JSON>``: every field, exact amounts as strings."""
    fields = [
        str(payment.id),
        payment.customer_id,
        str(payment.amount),
        payment.currency,
        payment.status.value,
        payment.created_at.isoformat(),
        payment.updated_at.isoformat(),
        payment.version,
        payment.failure_reason,
        payment.idempotency_key,
        dict(payment.metadata),
        str(payment.captured_amount),
        str(payment.refunded_amount),
        str(payment.pending_refunds),
        payment.has_plan,
    ]
    return f"{payment.version}|{json.dumps(fields, separators=(',', ':'), ensure_ascii=False)}"


def decode(entry: str | bytes) -> Payment:
    """The payment ``encode`` wrote."""
    text = entry.decode() if isinstance(entry, bytes) else entry
    f: list[Any] = json.loads(text.partition("|")[2])
    return Payment(
        id=UUID(f[0]),
        customer_id=f[1],
        amount=Decimal(f[2]),
        currency=f[3],
        status=PaymentStatus(f[4]),
        created_at=datetime.fromisoformat(f[5]),
        updated_at=datetime.fromisoformat(f[6]),
        version=f[7],
        failure_reason=f[8],
        idempotency_key=f[9],
        metadata=f[10],
        captured_amount=Decimal(f[11]),
        refunded_amount=Decimal(f[12]),
        pending_refunds=Decimal(f[13]),
        has_plan=f[14],
    )
