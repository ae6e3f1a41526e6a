"""The payment, its status, and the pure functions that move it between states."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import UUID

import attrs

from paymentorch.domain.errors import InvalidTransition


class PaymentStatus(enum.StrEnum):
    """Where a payment is in its life. Only ``PENDING`` can change."""

    PENDING = "Pending"
    CONFIRMED = "Confirmed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


_NO_METADATA: Mapping[str, str] = MappingProxyType({})


def _frozen_metadata(value: Mapping[str, str]) -> Mapping[str, str]:
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value)) if value else _NO_METADATA  # one shared empty view


@attrs.frozen
class Payment:
    """One payment, as the store holds it.

    Attributes:
        id: Time-ordered UUID (version 7).
        customer_id: Who pays.
        amount: Exact, quantized to the currency's minor unit.
        currency: ISO 4217 code, upper case.
        status: The current state.
        created_at: When it was created (UTC).
        updated_at: When it last changed (UTC).
        version: 1 at creation, +1 on every transition.
        failure_reason: Why it failed, when it did.
        idempotency_key: The key it was created with, until purged.
        metadata: Caller's string pairs, read-only.
    """

    id: UUID
    customer_id: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    created_at: datetime
    updated_at: datetime
    version: int = 1
    failure_reason: str | None = None
    idempotency_key: str | None = None
    metadata: Mapping[str, str] = attrs.field(
        default=_NO_METADATA, converter=_frozen_metadata, hash=False
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values: ids as str, the amount as an exact decimal string, ISO 8601 times."""
        return {
            "id": str(self.id),
            "customer_id": self.customer_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "status": self.status.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
            "failure_reason": self.failure_reason,
            "idempotency_key": self.idempotency_key,
            "metadata": dict(self.metadata),
        }


ACTIONS = {
    "confirm": PaymentStatus.CONFIRMED,
    "fail": PaymentStatus.FAILED,
    "cancel": PaymentStatus.CANCELLED,
}


def transition(
    payment: Payment, action: str, *, at: datetime, reason: str | None = None
) -> Payment:
    """Apply ``action`` (``confirm``, ``fail`` or ``cancel``) and return the new state.

    Raises:
        InvalidTransition: the payment is not Pending.
    """
    target = ACTIONS[action]
    if payment.status is not PaymentStatus.PENDING:
        raise InvalidTransition(payment.id, payment.status, action)
    return Payment(
        id=payment.id,
        customer_id=payment.customer_id,
        amount=payment.amount,
        currency=payment.currency,
        status=target,
        created_at=payment.created_at,
        updated_at=at,
        version=payment.version + 1,
        failure_reason=reason if target is PaymentStatus.FAILED else None,
        idempotency_key=payment.idempotency_key,
        metadata=payment.metadata,
    )


def confirm(payment: Payment, *, at: datetime) -> Payment:
    """Pending -> Confirmed."""
    return transition(payment, "confirm", at=at)


def fail(payment: Payment, *, at: datetime, reason: str) -> Payment:
    """Pending -> Failed, keeping the reason."""
    return transition(payment, "fail", at=at, reason=reason)


def cancel(payment: Payment, *, at: datetime) -> Payment:
    """Pending -> Cancelled."""
    return transition(payment, "cancel", at=at)
