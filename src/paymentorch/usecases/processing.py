"""Money through a processor: recording its answers (the worker's, a webhook's), and a
person's verdict on an answer nobody could learn."""

from __future__ import annotations

from uuid import UUID

import attrs

from paymentorch.domain import (
    Actor,
    FieldError,
    Operation,
    OperationStatus,
    PermissionDenied,
    ValidationError,
    parse_payment_id,
)
from paymentorch.domain.actions import IN_FLIGHT
from paymentorch.domain.orchestration import Step, from_callback, resolved
from paymentorch.domain.processing import Outcome, ProcessorResult

from . import refunds
from .context import Context, bad, logger
from .pipeline import Decision, commit
from .settlement import settling

UNSETTLED = frozenset({OperationStatus.UNKNOWN, OperationStatus.NEEDS_ATTENTION})
"""What a person may resolve."""


async def settle(ctx: Context, previous: Operation, step: Step, *, actor: Actor) -> bool:
    """Record ``step`` for ``previous`` with the payment's change, both or neither;
    ``False`` when someone settled the operation meanwhile. A refund on a plan that
    waited for this collection (or refund) is released once it settles."""

    async def decide(fresh: bool) -> Decision[bool]:
        return await settling(ctx, previous, step, actor, fresh=fresh)

    done = await commit(ctx, decide, what="an operation")
    if done:
        await _after(ctx, step.operation)
    return done


async def _after(ctx: Context, operation: Operation) -> None:
    if operation.kind in refunds.PLAN_MONEY and operation.status not in IN_FLIGHT:
        await refunds.release(ctx, operation.payment_id)


async def resolve(
    ctx: Context, operation_id: UUID | str, outcome: Outcome | str, *, actor: Actor, reason: str
) -> Operation:
    """Settle an unknown operation as a person found it out; the settled operation."""
    ctx.policy.check(actor, "resolve")
    errors = ctx.validation.check_reason(reason, required=True)
    try:
        op_id = parse_payment_id(operation_id, "operation_id")
    except ValidationError as exc:
        errors = [*exc.errors, *errors]
    answer = str(outcome)
    if answer not in (Outcome.SUCCEEDED.value, Outcome.DECLINED.value):
        errors.append(FieldError("outcome", "must be succeeded or declined", "choice"))
    if errors:
        raise ValidationError(errors)

    async def decide(_fresh: bool) -> Decision[Operation]:
        previous = await ctx.store.get_operation(op_id)
        if previous is None:
            raise bad("operation_id", "no such operation", "missing")
        if previous.status not in UNSETTLED:
            message = (
                f"is {previous.status.value}: only unknown operations, or those needing"
                " attention, are resolved"
            )
            raise bad("operation_id", message, "state")
        step = resolved(previous, Outcome(answer), at=ctx.clock(), reason=reason, by=actor.id)
        found = await settling(ctx, previous, step, actor, fresh=False)
        return Decision(step.operation, found.change, found.settles, found.operation)

    settled = await commit(ctx, decide, what="a resolution")
    await _after(ctx, settled)
    return await ctx.store.get_operation(op_id) or settled


async def record_callback(
    ctx: Context,
    processor: str,
    event_id: str,
    *,
    result: ProcessorResult,
    operation_id: UUID | str | None,
    reference: str | None,
) -> bool:
    """Apply a webhook once; whether its id was new."""
    op_id = _check_callback(processor, event_id, result, operation_id, reference)
    if op_id is not None:
        operation = await ctx.store.get_operation(op_id)
    else:
        operation = await ctx.store.find_operation_by_reference(processor, str(reference))
    if operation is not None and not _sent_to(operation, processor):
        raise PermissionDenied(
            f"processor:{processor}",
            f"settle operation {operation.id}",
            "the processor it was sent to",
        )
    fresh = await ctx.store.record_callback(
        processor,
        event_id,
        operation_id=None if operation is None else operation.id,
        outcome=result.outcome.value,
        received_at=ctx.clock(),
    )
    if not fresh:
        return False
    if operation is None:
        logger.warning("callback %s from %s names no known operation", event_id, processor)
        return True
    if result.outcome in (Outcome.SUCCEEDED, Outcome.DECLINED):
        await _apply_callback(ctx, operation, processor, result)
    return True


async def _apply_callback(
    ctx: Context, operation: Operation, processor: str, result: ProcessorResult
) -> None:
    answered = (
        OperationStatus.SUCCEEDED
        if result.outcome is Outcome.SUCCEEDED
        else OperationStatus.DECLINED
    )

    async def decide(fresh: bool) -> Decision[Operation | None]:
        current = await ctx.store.get_operation(operation.id) if fresh else operation
        if current is None or current.status in (answered, OperationStatus.NEEDS_ATTENTION):
            return Decision(None)  # said already, or a person settles it (resolve_operation)
        now = ctx.clock()
        if current.status in (OperationStatus.PENDING, OperationStatus.UNKNOWN):
            step = from_callback(current, result, processor=processor, at=now)
            actor = Actor.system(f"processor:{processor}")
            found = await settling(ctx, current, step, actor, fresh=False)
            return Decision(step.operation, found.change, found.settles, found.operation)
        flagged = attrs.evolve(
            current,
            status=OperationStatus.NEEDS_ATTENTION,
            due_at=None,
            updated_at=now,
            error=f"{processor} says {result.outcome.value} after {current.status.value}",
        )
        return Decision(None, settles=current, operation=flagged)

    settled = await commit(ctx, decide, what="a callback")
    if settled is not None:
        await _after(ctx, settled)


def _check_callback(
    processor: object, event_id: object, result: object, operation_id: object, reference: object
) -> UUID | None:
    """A callback's arguments checked; the operation id, if it names one.

    Raises:
        ValidationError: every problem found.
    """
    errors: list[FieldError] = []
    for name, value, longest in (("processor", processor, 100), ("event_id", event_id, 200)):
        if not isinstance(value, str) or not 1 <= len(value) <= longest:
            errors.append(FieldError(name, f"must be 1 to {longest} characters", "length"))
    if not isinstance(result, ProcessorResult):
        errors.append(FieldError("result", "must be a ProcessorResult", "type"))
    op_id = None
    if operation_id is not None:
        try:
            op_id = parse_payment_id(operation_id, "operation_id")
        except ValidationError as exc:
            errors.extend(exc.errors)
    elif not isinstance(reference, str) or not reference:
        errors.append(FieldError("reference", "give operation_id or reference", "required"))
    if errors:
        raise ValidationError(errors)
    return op_id


def _sent_to(operation: Operation, processor: str) -> bool:
    """Whether ``operation`` went to ``processor``: a callback under any other name, or
    for an operation never sent, speaks for money it does not hold."""
    never_sent = operation.status is OperationStatus.PENDING and operation.attempts == 0
    return operation.processor == processor and not never_sent
