"""Money movements: each refund (and, with a processor, each charge, authorization,
capture, void and installment) is an ``Operation`` with a life of its own."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs

from paymentorch.domain.money import money_text


class OperationKind(enum.StrEnum):
    """What an operation moves."""

    CHARGE = "charge"
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"
    INSTALLMENT = "installment"


class OperationStatus(enum.StrEnum):
    """Where an operation is: ``pending`` until an outcome is known for sure."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"
    NEEDS_ATTENTION = "needs_attention"


@attrs.frozen
class Operation:
    """One movement of money for one payment.

    Attributes:
        id: Time-ordered UUID; also the idempotency key sent to a processor.
        payment_id: The payment it belongs to.
        kind: What it moves.
        amount: How much, exactly, in the payment's currency.
        currency: The payment's currency.
        status: Where it is.
        processor: The processor that carries it out (None when it completes inline).
        reference: The processor's id for it, once known.
        attempts: Calls made to the processor so far.
        reason: Why it was asked for (a refund's reason), if given.
        idempotency_key: The caller's key, scoped by payment and actor.
        error: The last error, for a person.
        created_at: When it was asked for (UTC).
        updated_at: When it last changed (UTC).
        due_at: When the worker should next act on it (None once settled, and while
            a refund on a plan waits for a collection to settle).
        lookups: How often the processor was asked what became of it.
        installment: The installment a collection (``installment``) is for.
        processor_amount: What the processor is asked to move, when it is less than
            ``amount``: a refund on a plan sends only the part that goes back to the
            customer (the rest reduces what is still owed). None: ``amount``.
    """

    id: UUID
    payment_id: UUID
    kind: OperationKind
    amount: Decimal
    currency: str
    status: OperationStatus
    created_at: datetime
    updated_at: datetime
    processor: str | None = None
    reference: str | None = None
    attempts: int = 0
    reason: str | None = None
    idempotency_key: str | None = None
    error: str | None = None
    due_at: datetime | None = None
    lookups: int = 0
    installment: int | None = None
    processor_amount: Decimal | None = None

    @property
    def moves(self) -> Decimal:
        """What the processor is asked to move for it."""
        return self.amount if self.processor_amount is None else self.processor_amount

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values, as events and HTTP hosts want them."""
        return {
            "id": str(self.id),
            "payment_id": str(self.payment_id),
            "kind": self.kind.value,
            "amount": money_text(self.amount, self.currency),
            "currency": self.currency,
            "status": self.status.value,
            "processor": self.processor,
            "reference": self.reference,
            "attempts": self.attempts,
            "reason": self.reason,
            "idempotency_key": self.idempotency_key,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "due_at": None if self.due_at is None else self.due_at.isoformat(),
            "lookups": self.lookups,
            "installment": self.installment,
            "processor_amount": None
            if self.processor_amount is None
            else money_text(self.processor_amount, self.currency),
        }
