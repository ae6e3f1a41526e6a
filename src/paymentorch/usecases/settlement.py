"""What a processor's answer (or a person's verdict) does to an operation and its payment:
the decision the commit pipeline writes when an operation settles."""

from __future__ import annotations

from datetime import datetime

import attrs

from paymentorch.domain import (
    Actor,
    AmountExceeded,
    Change,
    InvalidTransition,
    Operation,
    OperationKind,
    OperationStatus,
    PaymentStatus,
    ValidationError,
    current_correlation_id,
    record_change,
)
from paymentorch.domain.orchestration import Step, already_there, installment_of, settle_payment
from paymentorch.domain.plans import Plan, refund_on_plan

from . import dunning
from .context import Context
from .effects import planned
from .pipeline import Decision


async def settling(
    ctx: Context, previous: Operation, step: Step, actor: Actor, *, fresh: bool
) -> Decision[bool]:
    """The decision that records ``step`` for ``previous``: the operation's new state and
    the payment's change, both or neither; ``False`` (nothing to write) when, on a second
    look (``fresh``), someone settled the operation meanwhile."""
    if fresh:
        stored = await ctx.store.get_operation(previous.id)
        if stored is None or (stored.status, stored.attempts, stored.lookups) != (
            previous.status,
            previous.attempts,
            previous.lookups,
        ):
            return Decision(False)  # settled by someone else
    operation, change = await _settlement(ctx, step, actor)
    return Decision(True, change=change, settles=previous, operation=operation)


async def _settlement(ctx: Context, step: Step, actor: Actor) -> tuple[Operation, Change | None]:
    """The operation as ``step`` leaves it, and the payment's change, on the payment as
    the store has it now. A payment already where the answer leads (confirmed by hand
    while its charge was unknown) stays as it is; one that can no longer take the change
    (cancelled by hand while its charge was in flight) leaves the operation for a person."""
    operation = step.operation
    if step.payment_action is None:
        return operation, None
    current, plan = await ctx.read_with_plan(operation.payment_id)
    if operation.kind is OperationKind.CANCEL and current.status is PaymentStatus.FAILED:
        return operation, None  # the void of a failed payment's hold: it stays Failed
    if step.payment_action in ("confirm", "refund") and current.has_plan:
        wrong = None if plan is None else _not_as_asked(plan, operation, at=operation.updated_at)
        if wrong is not None:
            return needs_attention(operation, wrong), None
    try:
        new = settle_payment(
            current, operation, step.payment_action, at=operation.updated_at, reason=step.reason
        )
    except (InvalidTransition, AmountExceeded) as exc:
        if already_there(current, step.payment_action):
            return operation, None  # moved by hand to where this answer leads
        return needs_attention(operation, str(exc)), None
    change = record_change(
        new,
        step.payment_action,
        from_status=current.status,
        actor_id=actor.id,
        reason=step.reason,
        correlation_id=current_correlation_id(),
        operation=operation,
    )
    # The operation rides in the event; the store updates it rather than adding it.
    change = attrs.evolve(change, operation=None)
    if step.payment_action == "collection_failed":
        return operation, await dunning.failed(
            ctx, change, current, plan, operation=operation, code=step.code
        )
    try:
        change = await planned(
            ctx, change, current, step.payment_action, amount=operation.amount,
            installment=installment_of(operation), clearing=operation.processor,
            operation_id=operation.id, plan=plan,
        )  # fmt: skip
    except ValidationError as exc:  # collected, yet paid by hand or cancelled meanwhile
        return needs_attention(operation, "; ".join(e.message for e in exc.errors)), None
    return operation, change


def _not_as_asked(plan: Plan, operation: Operation, *, at: datetime) -> str | None:
    """Why a collection or refund the processor carried out no longer fits ``plan``, or
    None: installment 1 is paid only for exactly what it asks, and a refund gives back
    through the processor exactly what its allocation returns."""
    if operation.kind is OperationKind.INSTALLMENT:
        due = plan.collection_amount(1)
        if operation.amount != due:
            return f"{operation.amount} was collected, but installment 1 asks for {due}"
        return None
    if operation.kind is OperationKind.REFUND and operation.processor_amount is not None:
        try:
            _, allocation = refund_on_plan(plan, operation.amount, at)
        except ValidationError as exc:
            return "; ".join(e.message for e in exc.errors)
        if allocation.returned != operation.processor_amount:
            return (
                f"{operation.processor_amount} went back, but the plan now returns"
                f" {allocation.returned} for this refund"
            )
    return None


def needs_attention(operation: Operation, why: str) -> Operation:
    """``operation`` settled at the processor but the payment cannot take it: a person."""
    return attrs.evolve(
        operation,
        status=OperationStatus.NEEDS_ATTENTION,
        due_at=None,
        error=f"{operation.status.value}, but {why}"[:1000],
    )
