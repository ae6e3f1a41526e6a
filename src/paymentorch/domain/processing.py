"""What passes between paymentorch and a payment processor: pure values."""

from __future__ import annotations

import enum
from decimal import Decimal
from uuid import UUID

import attrs

from paymentorch.domain.operations import OperationKind


class Outcome(enum.StrEnum):
    """What a processor says became of a request.

    ``SUCCEEDED`` and ``DECLINED`` are final answers. ``PENDING``: accepted, the answer
    comes later. ``UNKNOWN``: nobody knows whether money moved (a timeout after the
    request left); it must be reconciled, never guessed. ``NOT_ATTEMPTED``: the request
    certainly did not leave (connection refused, circuit open). ``NOT_FOUND``: a lookup
    found no trace of the operation.
    """

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    PENDING = "pending"
    UNKNOWN = "unknown"
    NOT_ATTEMPTED = "not_attempted"
    NOT_FOUND = "not_found"


@attrs.frozen
class ProcessorCapabilities:
    """What a processor promises.

    Attributes:
        lookup: It can say what became of an operation id (``lookup``).
        not_found_means_not_executed: A lookup that finds nothing proves the operation
            never moved money, so it may be executed again under the same id.
    """

    lookup: bool = True
    not_found_means_not_executed: bool = False


@attrs.frozen
class ProcessorRequest:
    """One operation, as a processor receives it.

    Attributes:
        operation_id: The idempotency key the processor must honour: the same id never
            moves money twice.
        kind: What to do.
        payment_id: The payment it belongs to.
        amount: How much, exactly.
        currency: In which currency.
        reference: The processor's id of the authorization or charge a follow-up
            (capture, cancel, refund) refers to.
        processor: The processor that holds the original, which follow-ups and lookups
            must go to (None for a first request).
        installment: The installment a collection is for.
    """

    operation_id: UUID
    kind: OperationKind
    payment_id: UUID
    amount: Decimal
    currency: str
    reference: str | None = None
    processor: str | None = None
    installment: int | None = None


@attrs.frozen
class ProcessorResult:
    """A processor's answer.

    Attributes:
        outcome: What became of the request.
        reference: The processor's id for the operation, when it gave one.
        code: The processor's code for a decline or an error.
        message: A person's explanation.
        processor: Which processor answered (a router says which of its processors did).
    """

    outcome: Outcome
    reference: str | None = None
    code: str | None = None
    message: str | None = None
    processor: str | None = None
