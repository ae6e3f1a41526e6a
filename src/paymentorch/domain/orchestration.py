"""What a processor's answer does to an operation and its payment: pure decisions.

The worker asks; this module decides. Nothing here guesses: an answer nobody can
trust (a timeout, an exception, an unknown lookup) leads to another lookup on the
schedule, and when the schedule runs out to a person (``needs_attention``), never to a
failure because time passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import attrs

from paymentorch.domain.actions import TRANSITIONS
from paymentorch.domain.errors import InvalidTransition
from paymentorch.domain.operations import Operation, OperationKind, OperationStatus
from paymentorch.domain.payment import (
    Payment,
    PaymentStatus,
    release_refund,
    touched,
    transition,
)
from paymentorch.domain.processing import Outcome, ProcessorCapabilities, ProcessorResult

LOOKUP_SCHEDULE: Final = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
)
"""When to ask again what became of an operation whose outcome is unknown."""

IN_DOUBT_ERROR: Final = "a worker took it and stopped before recording an answer"
"""Why a store's claim turns a pending operation whose lease ran out into an unknown one:
it may have been sent, so it is looked up (at every processor) before anything else."""

# What a settled operation does to its payment: (on success, on decline).
PAYMENT_ACTIONS: Final = {
    OperationKind.CHARGE: ("confirm", "fail"),
    OperationKind.AUTHORIZE: ("authorize", "fail"),
    OperationKind.CAPTURE: ("capture", "capture_declined"),
    OperationKind.CANCEL: ("cancel", "cancel_declined"),
    OperationKind.REFUND: ("refund", "refund_declined"),
    # A declined installment stays owed: the retry ladder, overdue processing and a person
    # take it from there.
    OperationKind.INSTALLMENT: ("installment_paid", "collection_failed"),
}
FIRST_INSTALLMENT_ACTIONS: Final = ("confirm", "fail")
"""Installment 1 collected is the plan's purchase: it confirms the payment, or fails it."""
# The statuses a payment must have for an operation of this kind to be sent at all.
SENT_FROM: Final = {
    OperationKind.CHARGE: frozenset({PaymentStatus.PENDING}),
    OperationKind.AUTHORIZE: frozenset({PaymentStatus.PENDING}),
    OperationKind.CAPTURE: frozenset({PaymentStatus.AUTHORIZED}),
    # A failed payment whose authorization a processor holds voids the hold.
    OperationKind.CANCEL: frozenset({PaymentStatus.AUTHORIZED, PaymentStatus.FAILED}),
    OperationKind.REFUND: frozenset({PaymentStatus.CONFIRMED}),
    OperationKind.INSTALLMENT: frozenset({PaymentStatus.CONFIRMED}),
}
FOLLOW_UPS: Final = frozenset({OperationKind.CAPTURE, OperationKind.CANCEL, OperationKind.REFUND})
"""Operations on money an earlier charge or authorization holds, at the same processor."""


@attrs.frozen
class Step:
    """The decision about one answer.

    Attributes:
        operation: The operation as it is after the answer.
        payment_action: What to do to the payment (``confirm``, ``authorize``, ``fail``),
            or None when the payment does not change yet.
        reason: Why, for a failure (the processor's code and message).
        code: The processor's code for a decline (None for a person's verdict).
    """

    operation: Operation
    payment_action: str | None = None
    reason: str | None = None
    code: str | None = None


def decide(
    operation: Operation,
    result: ProcessorResult,
    *,
    looked_up: bool,
    at: datetime,
    schedule: tuple[timedelta, ...],
    capabilities: ProcessorCapabilities,
) -> Step:
    """The next state of ``operation`` after ``result`` (of an execute, or a lookup)."""
    calls = operation.attempts + (0 if looked_up else 1)
    asked = looked_up and result.outcome is not Outcome.NOT_ATTEMPTED
    base = attrs.evolve(
        operation,
        attempts=calls,
        updated_at=at,
        # A request that never left is not pinned to the processor that refused it.
        processor=(
            operation.processor
            if result.outcome is Outcome.NOT_ATTEMPTED
            else result.processor or operation.processor
        ),
        reference=result.reference or operation.reference,
        lookups=operation.lookups + (1 if asked else 0),
    )
    outcome = result.outcome
    if outcome in (Outcome.SUCCEEDED, Outcome.DECLINED):
        # A payment keeps 500 characters of a decline's reason.
        reason = None if outcome is Outcome.SUCCEEDED else _why(result)[:500]
        return _settled(base, outcome, at=at, note=reason, reason=reason, code=result.code)
    if outcome is Outcome.NOT_ATTEMPTED or (outcome is Outcome.PENDING and not looked_up):
        # Nothing left this side, or accepted for later: ask again (the id keeps it safe).
        tried = base.lookups if looked_up else calls - 1
        delay = schedule[min(tried, len(schedule) - 1)] if schedule else timedelta(0)
        return Step(attrs.evolve(base, due_at=at + delay, error=_why(result)))
    if looked_up and outcome is Outcome.NOT_FOUND and capabilities.not_found_means_not_executed:
        # The processor proves nothing happened: execute again, under the same id.
        return Step(attrs.evolve(base, status=OperationStatus.PENDING, due_at=at))
    # Unknown: a timeout, an exception, an unknown or pending lookup, a NOT_FOUND that
    # proves nothing. Look up again on the schedule; when it runs out, ask a person.
    if base.lookups >= len(schedule):
        return Step(
            attrs.evolve(
                base, status=OperationStatus.NEEDS_ATTENTION, due_at=None, error=_why(result)
            )
        )
    return Step(
        attrs.evolve(
            base,
            status=OperationStatus.UNKNOWN,
            due_at=at + schedule[base.lookups],
            error=_why(result),
        )
    )


def _why(result: ProcessorResult) -> str:
    parts = [result.outcome.value, result.code, result.message]
    return ": ".join(p for p in parts if p)[:1000]


def resolved(operation: Operation, outcome: Outcome, *, at: datetime, reason: str, by: str) -> Step:
    """A person's (``by``) verdict on an operation whose outcome was unknown."""
    note = f"resolved by hand by {by}: {reason}"
    return _settled(operation, outcome, at=at, note=note, reason=reason)


def already_there(payment: Payment, action: str) -> bool:
    """Whether ``payment`` already has the status ``action`` leads to (moved by hand)."""
    target = TRANSITIONS.get(action)
    return target is not None and payment.status is target[1]


def from_callback(
    operation: Operation, result: ProcessorResult, *, processor: str, at: datetime
) -> Step:
    """A processor's callback (a webhook) with a final answer for ``operation``."""
    return _settled(
        attrs.evolve(operation, processor=operation.processor or processor),
        result.outcome,
        at=at,
        note=None if result.outcome is Outcome.SUCCEEDED else _why(result),
        reason=None if result.outcome is Outcome.SUCCEEDED else _why(result)[:500],
        reference=result.reference,
        code=result.code,
    )


def _settled(
    operation: Operation,
    outcome: Outcome,
    *,
    at: datetime,
    note: str | None,
    reason: str | None,
    reference: str | None = None,
    code: str | None = None,
) -> Step:
    done = outcome is Outcome.SUCCEEDED
    on_success, on_decline = payment_actions(operation)
    settled = attrs.evolve(
        operation,
        status=OperationStatus.SUCCEEDED if done else OperationStatus.DECLINED,
        due_at=None,
        updated_at=at,
        reference=reference or operation.reference,
        error=None if note is None else note[:1000],
    )
    return Step(settled, on_success if done else on_decline, reason, None if done else code)


def payment_actions(operation: Operation) -> tuple[str | None, str | None]:
    """What ``operation`` settled does to its payment: (on success, on decline)."""
    if installment_of(operation) == 1:
        return FIRST_INSTALLMENT_ACTIONS
    return PAYMENT_ACTIONS.get(operation.kind, (None, None))


def sent_from(operation: Operation) -> frozenset[PaymentStatus]:
    """The statuses its payment must have for ``operation`` to be sent."""
    if installment_of(operation) == 1:
        return frozenset({PaymentStatus.PENDING})
    return SENT_FROM[operation.kind]


def withdrawn(operation: Operation, status: PaymentStatus, *, at: datetime) -> Step | None:
    """A pending operation whose payment moved on before it was sent is not sent.

    A pending operation never reached the processor (or the processor proved it did
    not), so declining it here moves no money. None when it should be sent.
    """
    if operation.status is not OperationStatus.PENDING or status in sent_from(operation):
        return None
    return unsent(operation, f"the payment is {status.value}", at=at)


def unsent(operation: Operation, why: str, *, at: datetime) -> Step:
    """Decline a pending operation without sending it (it moved no money)."""
    settled = attrs.evolve(
        operation,
        status=OperationStatus.DECLINED,
        due_at=None,
        updated_at=at,
        error=f"not sent: {why}",
    )
    return Step(settled)


def settle_payment(payment: Payment, operation: Operation, action: str, *, at: datetime,
                   reason: str | None) -> Payment:  # fmt: skip
    """The payment after ``action`` (from ``PAYMENT_ACTIONS``) for a settled ``operation``.

    Raises:
        InvalidTransition: the payment can no longer take it (a person moved it).
        AmountExceeded: a capture of more than was authorized.
    """
    if action in ("refund", "refund_declined"):
        return release_refund(payment, operation.amount, at=at, refunded=action == "refund")
    if action in ("capture_declined", "cancel_declined"):
        if payment.status is not PaymentStatus.AUTHORIZED:
            raise InvalidTransition(payment.id, payment.status, action.replace("_", " "))
        return touched(payment, at=at)
    if action in ("installment_paid", "collection_failed"):
        if payment.status is not PaymentStatus.CONFIRMED:
            raise InvalidTransition(payment.id, payment.status, "collect an installment of")
        return touched(payment, at=at)
    # A plan's capture takes installment 1 from the customer; the order is captured whole.
    amount = None if payment.has_plan else operation.amount
    return transition(payment, action, at=at, reason=reason, amount=amount)


def original_of(operations: Sequence[Operation]) -> Operation | None:
    """The charge or authorization a processor carried out, which follow-ups refer to."""
    return next(
        (
            op
            for op in reversed(operations)
            if op.kind in (OperationKind.CHARGE, OperationKind.AUTHORIZE)
            and op.status is OperationStatus.SUCCEEDED
            and op.processor is not None
        ),
        None,
    )


def collector_of(operations: Sequence[Operation]) -> Operation | None:
    """The last collection a processor carried out for a plan (an installment, or the
    capture of installment 1): the money a refund on the plan goes back through."""
    return next(
        (
            op
            for op in reversed(operations)
            if op.kind in (OperationKind.INSTALLMENT, OperationKind.CAPTURE, OperationKind.CHARGE)
            and op.status is OperationStatus.SUCCEEDED
            and op.processor is not None
        ),
        None,
    )


def capture_method_of(operations: Sequence[Operation]) -> str | None:
    """``automatic`` or ``manual``: how a payment was created to move its money, from
    the intent its creation queued (None when it queued none)."""
    first = operations[0] if operations else None
    if first is None:
        return None
    if first.kind is OperationKind.AUTHORIZE:
        return "manual"
    if first.kind is OperationKind.CHARGE or installment_of(first) == 1:
        return "automatic"
    return None


def installment_key(number: int, attempt: int = 1) -> str:
    """The idempotency key of an ``attempt`` to collect installment ``number``: one per
    attempt (each a new operation, so a new key at the processor too)."""
    return f"installment-{number}" if attempt == 1 else f"installment-{number}-{attempt}"


def installment_of(operation: Operation) -> int | None:
    """The installment an ``installment`` operation collects."""
    return operation.installment if operation.kind is OperationKind.INSTALLMENT else None
