"""The error hierarchy. Every error carries a stable ``code`` string."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

import attrs

if TYPE_CHECKING:
    from paymentorch.domain.payment import PaymentStatus


@attrs.frozen
class FieldError:
    """One broken rule.

    Attributes:
        field: The input that broke it (``amount``, ``items[3].currency``).
        message: What is wrong, for a person.
        code: A stable machine-readable name for the rule (``too_many_decimals``).
    """

    field: str
    message: str
    code: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class PaymentError(Exception):
    """Base of every paymentorch error."""

    code = "payment_error"


class ValidationError(PaymentError, ValueError):
    """The input broke one or more rules; ``errors`` lists every one of them."""

    code = "validation_error"

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = tuple(errors)
        if not self.errors:
            raise ValueError("ValidationError needs at least one FieldError")
        listed = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{len(self.errors)} invalid field(s): {listed}")


class PaymentNotFound(PaymentError, LookupError):
    """No payment has this id."""

    code = "payment_not_found"

    def __init__(self, payment_id: UUID) -> None:
        self.payment_id = payment_id
        super().__init__(f"payment {payment_id} does not exist")


class InvalidTransition(PaymentError):
    """The state machine forbids ``action`` from the payment's current ``status``."""

    code = "invalid_transition"

    def __init__(
        self, payment_id: UUID, status: PaymentStatus, action: str, because: str | None = None
    ) -> None:
        self.payment_id = payment_id
        self.status = status
        self.action = action
        why = f", {because}" if because else ""
        super().__init__(f"cannot {action} payment {payment_id}: it is {status.value}{why}")


class AmountExceeded(PaymentError):
    """More money was asked for than the payment has left to give."""

    code = "amount_exceeded"

    def __init__(self, payment_id: UUID, requested: Decimal, available: Decimal) -> None:
        self.payment_id = payment_id
        self.requested = requested
        self.available = available
        super().__init__(f"payment {payment_id}: {requested} asked for, {available} available")


class IdempotencyConflict(PaymentError):
    """The idempotency key was already used with different parameters."""

    code = "idempotency_conflict"

    def __init__(self, key: str, detail: str = "") -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key!r} was already used with different parameters"
            + (f" ({detail})" if detail else "")
        )


class PermissionDenied(PaymentError):
    """The actor lacks the role that ``action`` needs."""

    code = "permission_denied"

    def __init__(self, actor_id: str, action: str, needs: str = "") -> None:
        self.actor_id = actor_id
        self.action = action
        super().__init__(
            f"actor {actor_id!r} may not {action}" + (f": needs {needs}" if needs else "")
        )


class StoreError(PaymentError):
    """The store refused a write for a reason outside the payment rules (a broken constraint).

    Nothing of the write is visible. It signals a bug or a damaged database, never bad input.
    """

    code = "store_error"


class StoreUnavailable(PaymentError):
    """The backend could not be reached, or not in time; the driver's error is the
    ``__cause__``.

    ``limit`` names the limit that was hit, when one was: ``deadline``,
    ``statement_timeout``, ``lock_timeout``, ``pool_timeout`` or ``max_waiting``.
    """

    code = "store_unavailable"

    def __init__(self, message: str, *, limit: str | None = None) -> None:
        self.limit = limit
        super().__init__(message)


class CreditLimitExceeded(PaymentError):
    """A creation would take the customer's exposure past its credit limit."""

    code = "credit_limit_exceeded"

    def __init__(
        self, customer_id: str, limit: Decimal, exposure: Decimal, requested: Decimal
    ) -> None:
        self.customer_id = customer_id
        self.limit = limit
        self.exposure = exposure
        self.requested = requested
        super().__init__(
            f"customer {customer_id}: {requested} asked for with {exposure} owed already;"
            f" the limit is {limit}"
        )
