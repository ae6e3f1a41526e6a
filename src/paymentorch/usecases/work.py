"""The worker's use cases: claiming due operations, and preparing one for its processor
(or withdrawing it, unsent, when its payment moved on)."""

from __future__ import annotations

from datetime import datetime

from paymentorch.domain import Actor, Operation, OperationStatus, PaymentStatus
from paymentorch.domain.orchestration import (
    FOLLOW_UPS,
    Step,
    collector_of,
    installment_of,
    original_of,
    unsent,
    withdrawn,
)
from paymentorch.domain.processing import ProcessorRequest

from . import processing
from .context import Context


async def claim(ctx: Context, limit: int, *, lease_until: datetime) -> list[Operation]:
    """Lease up to ``limit`` due operations until ``lease_until``, soonest first."""
    return await ctx.store.claim_operations(limit, now=ctx.clock(), lease_until=lease_until)


async def prepare(ctx: Context, operation: Operation, *, actor: Actor) -> ProcessorRequest | None:
    """The request to send for ``operation``; None when it was withdrawn instead (not sent
    yet, and its payment or installment moved on: declined unsent, which moves no money)."""
    if operation.status is OperationStatus.PENDING:  # not sent yet: is it still wanted?
        step = await _withdrawn(ctx, operation)
        if step is not None:
            await processing.settle(ctx, operation, step, actor=actor)
            return None
    reference = operation.reference
    if operation.kind in FOLLOW_UPS:  # the processor's id of the money it refers to
        operations = await ctx.store.operations(operation.payment_id)
        # A refund on a plan goes back through its last collection.
        on_plan = operation.processor_amount is not None
        held = collector_of(operations) if on_plan else original_of(operations)
        reference = None if held is None else held.reference
    return ProcessorRequest(
        operation_id=operation.id,
        kind=operation.kind,
        payment_id=operation.payment_id,
        amount=operation.moves,  # a refund on a plan: only what goes back
        currency=operation.currency,
        reference=reference,
        processor=operation.processor,
        installment=operation.installment,
    )


async def _withdrawn(ctx: Context, operation: Operation) -> Step | None:
    payment = await ctx.store.get(operation.payment_id)
    status = PaymentStatus.CANCELLED if payment is None else payment.status
    step = withdrawn(operation, status, at=ctx.clock())
    number = installment_of(operation)
    if step is not None or number is None:
        return step
    # A collection whose installment was paid by hand or cancelled is not sent.
    plan = await ctx.store.plan(operation.payment_id)
    installment = None if plan is None else plan.installment(number)
    if installment is not None and installment.unpaid:
        return None
    state = "gone" if installment is None else installment.status.value
    return unsent(operation, f"installment {number} is {state}", at=ctx.clock())
