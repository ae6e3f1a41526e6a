"""The payment, its status, and the pure functions that move it between states."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import UUID

import attrs

from paymentorch.domain.actions import TRANSITIONS
from paymentorch.domain.errors import AmountExceeded, InvalidTransition
from paymentorch.domain.money import money_text
from paymentorch.domain.status import PaymentStatus

__all__ = [
    "Payment",
    "PaymentStatus",
    "cancel",
    "confirm",
    "fail",
    "money_text",
    "refund",
    "release_refund",
    "reserve_refund",
    "touched",
    "transition",
]


_NO_METADATA: Mapping[str, str] = MappingProxyType({})
_ZERO = Decimal(0)


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
        captured_amount: What was taken: 0 until Confirmed, then at most ``amount``.
        refunded_amount: The sum of succeeded refunds.
        pending_refunds: Refunds under way, reserved against what is left to refund.
        has_plan: Whether it is paid in installments (``service.plan(id)``).
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
    captured_amount: Decimal = _ZERO
    refunded_amount: Decimal = _ZERO
    pending_refunds: Decimal = _ZERO
    has_plan: bool = False

    @property
    def refundable(self) -> Decimal:
        """What may still be refunded: captured, less refunded and reserved."""
        return self.captured_amount - self.refunded_amount - self.pending_refunds

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
            "captured_amount": money_text(self.captured_amount, self.currency),
            "refunded_amount": money_text(self.refunded_amount, self.currency),
            "has_plan": self.has_plan,
        }


def transition(
    payment: Payment,
    action: str,
    *,
    at: datetime,
    reason: str | None = None,
    amount: Decimal | None = None,
) -> Payment:
    """Apply ``action`` (``confirm``, ``authorize``, ``capture``, ``fail``, ``cancel``).

    ``confirm`` captures the whole amount; ``capture`` takes ``amount`` (the whole amount
    when None) and releases the rest of the authorization.

    Raises:
        InvalidTransition: the payment's status does not allow ``action``.
        AmountExceeded: a capture asks for more than was authorized.
    """
    sources, target = TRANSITIONS[action]
    assert target is not None  # noqa: S101 - TRANSITIONS holds status changes only
    if payment.status not in sources:
        raise InvalidTransition(payment.id, payment.status, action)
    captured = payment.captured_amount
    if action == "confirm":
        captured = payment.amount
    elif action == "capture":
        captured = payment.amount if amount is None else amount
        if captured > payment.amount:
            raise AmountExceeded(payment.id, captured, payment.amount)
    failure_reason = reason if target is PaymentStatus.FAILED else None
    return _moved(payment, target, at, failure_reason, captured)


def _moved(
    payment: Payment,
    status: PaymentStatus,
    at: datetime,
    failure_reason: str | None,
    captured: Decimal,
) -> Payment:
    """``payment`` one version on, with its new status and captured amount."""
    # Every transition makes one: the constructor costs half what ``attrs.evolve`` does.
    return Payment(
        id=payment.id,
        customer_id=payment.customer_id,
        amount=payment.amount,
        currency=payment.currency,
        status=status,
        created_at=payment.created_at,
        updated_at=at,
        version=payment.version + 1,
        failure_reason=failure_reason,
        idempotency_key=payment.idempotency_key,
        metadata=payment.metadata,
        captured_amount=captured,
        refunded_amount=payment.refunded_amount,
        pending_refunds=payment.pending_refunds,
        has_plan=payment.has_plan,
    )


def refund(payment: Payment, amount: Decimal, *, at: datetime) -> Payment:
    """Give back ``amount`` of what was captured; Refunded once everything is.

    Raises:
        InvalidTransition: the payment is not Confirmed.
        AmountExceeded: more than is left to refund, or nothing.
    """
    # A refund completed inline: held and settled in one step, so one version on.
    held = reserve_refund(payment, amount, at=at)
    done = release_refund(held, amount, at=at, refunded=True)
    return attrs.evolve(done, version=payment.version + 1)


def reserve_refund(payment: Payment, amount: Decimal, *, at: datetime) -> Payment:
    """Hold ``amount`` of what is left to refund while a processor carries the refund out.

    Raises:
        InvalidTransition: the payment is not Confirmed.
        AmountExceeded: more than is left to refund, or nothing (all of it refunded or
            held for refunds under way).
    """
    if payment.status is not PaymentStatus.CONFIRMED:
        raise InvalidTransition(payment.id, payment.status, "refund")
    if amount > payment.refundable or amount <= 0:
        raise AmountExceeded(payment.id, amount, payment.refundable)
    return attrs.evolve(
        payment,
        updated_at=at,
        version=payment.version + 1,
        pending_refunds=payment.pending_refunds + amount,
    )


def release_refund(payment: Payment, amount: Decimal, *, at: datetime, refunded: bool) -> Payment:
    """Settle a held refund: refunded (Refunded once everything captured is), or released.

    Raises:
        InvalidTransition: no refund of ``amount`` is held.
    """
    if payment.status is not PaymentStatus.CONFIRMED or amount > payment.pending_refunds:
        raise InvalidTransition(payment.id, payment.status, "settle a refund of")
    pending = payment.pending_refunds - amount
    total = payment.refunded_amount + (amount if refunded else _ZERO)
    done = total == payment.captured_amount and not pending
    return attrs.evolve(
        payment,
        status=PaymentStatus.REFUNDED if done else PaymentStatus.CONFIRMED,
        updated_at=at,
        version=payment.version + 1,
        refunded_amount=total,
        pending_refunds=pending,
    )


def touched(payment: Payment, *, at: datetime) -> Payment:
    """The payment, one version on, its status unchanged (a request recorded, or declined)."""
    return attrs.evolve(payment, updated_at=at, version=payment.version + 1)


def confirm(payment: Payment, *, at: datetime) -> Payment:
    """Pending -> Confirmed."""
    return transition(payment, "confirm", at=at)


def fail(payment: Payment, *, at: datetime, reason: str) -> Payment:
    """Pending or Authorized -> Failed, keeping the reason."""
    return transition(payment, "fail", at=at, reason=reason)


def cancel(payment: Payment, *, at: datetime) -> Payment:
    """Pending or Authorized -> Cancelled."""
    return transition(payment, "cancel", at=at)
