"""Giving money back: a refund completes here, goes to the processor that holds the
money, or, on a plan with a collection under way, waits for it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

import attrs

from paymentorch.domain import (
    Actor,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    StoreError,
    ValidationError,
    current_correlation_id,
    record_change,
    refund,
    reserve_refund,
    uuid7,
)
from paymentorch.domain.actions import IN_FLIGHT
from paymentorch.domain.orchestration import Step, collector_of
from paymentorch.domain.plans import Plan, refund_on_plan
from paymentorch.domain.transitions import Transition, transition_sources
from paymentorch.domain.validation import same_refund

from .context import Context
from .effects import planned
from .follow_ups import follow_up, held
from .pipeline import Decision, Found, LostRace, commit, plan_of, step
from .settlement import needs_attention, settling

PLAN_MONEY = frozenset({OperationKind.INSTALLMENT, OperationKind.REFUND})
"""Operations that move a plan's money after its purchase: a refund waits while one of
them is under way, so that an installment is paid for exactly what was collected."""


async def give_back(
    ctx: Context,
    payment_id: UUID | str,
    amount: Decimal | int | str | None,
    *,
    actor: Actor,
    reason: str | None,
    idempotency_key: str | None,
) -> Operation:
    """Refund ``amount`` (what is left when None); the same key returns the same refund."""
    ctx.policy.check(actor, "refund")
    pid = ctx.id_and_reason(payment_id, reason, required=False, checked=True)
    errors = ctx.validation.check_operation_key(idempotency_key)
    if errors:
        raise ValidationError(errors)
    found = Found()
    move = None if idempotency_key is not None else _one_step(ctx, pid, amount, actor, reason)
    if move is not None:
        stepped = await step(ctx, move)
        if stepped.written is not None:
            return stepped.operation or await _completed(ctx, move)
        found = Found(stepped)

    async def decide(fresh: bool) -> Decision[Operation]:
        current = await found.payment(ctx, pid, fresh=fresh)
        if idempotency_key is not None:
            done = await ctx.store.find_operation(pid, scope=actor.id, key=idempotency_key)
            if done is not None:
                return Decision(same_refund(done, amount, reason, idempotency_key))
        wanted = current.refundable if amount is None else ctx.money(amount, current.currency)
        now = ctx.clock()
        new = refund(current, wanted, at=now)
        plan = found.plan(current)
        if plan is None:  # read once, for the route and the plan's change
            plan = await plan_of(ctx, current)
        try:
            route = await route_of(ctx, current, wanted, now, plan=plan)
        except ValidationError as exc:  # the plan was read after a newer refund committed
            raise LostRace from exc
        operation = attrs.evolve(
            route, reason=reason, idempotency_key=idempotency_key, created_at=now, updated_at=now
        )
        kind = "refund"
        if operation.status is OperationStatus.PENDING:  # held until the money moves
            kind, new = "refund_queued", reserve_refund(current, wanted, at=now)
        recorded = record_change(
            new,
            kind,
            from_status=current.status,
            actor_id=actor.id,
            reason=reason,
            correlation_id=current_correlation_id(),
            operation=operation,
        )
        try:
            recorded = await planned(ctx, recorded, current, kind, amount=wanted, plan=plan)
        except ValidationError as exc:  # the plan was read after a newer refund committed
            raise LostRace from exc
        return Decision(operation, change=recorded)

    return await commit(ctx, decide, what="a refund")


def _one_step(
    ctx: Context, pid: UUID, amount: object, actor: Actor, reason: str | None
) -> Transition | None:
    """The refund of ``amount`` (None: what is left) as one step the store decides, when
    no processor may hold the money and the amount is plainly one it could give back in
    any currency; else None (the decision says what is wrong)."""
    if ctx.processor is not None:
        return None
    taken = None if amount is None else ctx.validation.plain_amount(amount)
    if taken is None and amount is not None:
        return None
    return Transition(
        pid, "refund", transition_sources("refund"), at=ctx.clock(), actor_id=actor.id,
        reason=reason, correlation_id=current_correlation_id(), amount=taken,
        operation_id=uuid7(),
    )  # fmt: skip


async def _completed(ctx: Context, move: Transition) -> Operation:
    """The refund ``move`` wrote, read back: for a store that does not say which
    (``Stepped.operation``)."""
    for operation in await ctx.store.operations(move.payment_id):
        if operation.id == move.operation_id:
            return operation
    raise StoreError(f"the store wrote refund {move.operation_id} but does not keep it")


async def route_of(
    ctx: Context, payment: Payment, amount: Decimal, now: datetime, *, plan: Plan | None
) -> Operation:
    """The refund Operation of ``amount`` (``plan``: the payment's, read with it), by
    where its money goes: completed here (``succeeded``: nothing to give back through a
    processor), queued to the processor that holds the money (``pending``, due now), or,
    on a plan with a collection or another refund under way, waiting for it to settle
    (``pending``, not due).

    Raises:
        InvalidTransition, AmountExceeded: the payment cannot refund ``amount``.
        ValidationError: its plan cannot take the refund (read after a newer one).
    """
    reserve_refund(payment, amount, at=now)  # the payment's own rules first
    done = Operation(
        id=uuid7(),
        payment_id=payment.id,
        kind=OperationKind.REFUND,
        amount=amount,
        currency=payment.currency,
        status=OperationStatus.SUCCEEDED,
        created_at=now,
        updated_at=now,
    )
    if not payment.has_plan:
        original = await held(ctx, payment, "refund")
        if original is None:  # no processor holds it: the refund completes here
            return done
        return follow_up(original, OperationKind.REFUND, amount, None, now)
    operations = await ctx.store.operations(payment.id) if ctx.processor else []
    if any(op.status in IN_FLIGHT for op in operations if op.kind in PLAN_MONEY):
        return attrs.evolve(done, status=OperationStatus.PENDING)  # waits, not due
    if plan is None:
        raise StoreError(f"payment {payment.id} has no plan")
    _, allocation = refund_on_plan(plan, amount, now)  # ValidationError: a newer refund
    collector = collector_of(operations)
    if not allocation.returned or collector is None:
        return done  # it only reduces what is owed, or nothing went through a processor
    sent = follow_up(collector, OperationKind.REFUND, amount, None, now)
    return attrs.evolve(sent, processor_amount=allocation.returned)


def waits(operation: Operation) -> bool:
    """Whether ``operation`` is a refund on a plan waiting for a collection to settle."""
    return (
        operation.kind is OperationKind.REFUND
        and operation.status is OperationStatus.PENDING
        and operation.due_at is None
    )


async def release(ctx: Context, pid: UUID) -> None:
    """Allocate the refunds of the plan that waited for its collections, oldest first,
    once none is under way: each completed here when nothing goes back through a
    processor, or sent to the processor that collected last for what goes back (the next
    one then follows when that one settles)."""
    while await commit(ctx, lambda _fresh: _releasing(ctx, pid), what="waiting refunds"):
        pass  # one completed here: release the next


async def _releasing(ctx: Context, pid: UUID) -> Decision[bool]:
    """The next waiting refund's release; ``True`` when it completed here (another may
    follow), ``False`` when it was sent, set aside for a person, or nothing waits."""
    operations = await ctx.store.operations(pid)
    waiting = [op for op in operations if waits(op)]
    busy = any(op.kind in PLAN_MONEY and op.status in IN_FLIGHT and not waits(op)
               for op in operations)  # fmt: skip
    if not waiting or busy:
        return Decision(False)
    first, now = waiting[0], ctx.clock()
    plan = await ctx.store.plan(pid)
    if plan is None:
        raise StoreError(f"payment {pid} has refunds waiting for a plan it lacks")
    try:
        _, allocation = refund_on_plan(plan, first.amount, now)
    except ValidationError as exc:
        stuck = needs_attention(first, "; ".join(e.message for e in exc.errors))
        return Decision(False, settles=first, operation=stuck)
    collector = collector_of(operations)
    if not allocation.returned or collector is None:
        done = attrs.evolve(first, status=OperationStatus.SUCCEEDED, updated_at=now)
        found = await settling(ctx, first, Step(done, "refund"), Actor.system(), fresh=False)
        return attrs.evolve(found, result=True)
    sent = attrs.evolve(
        first, processor=collector.processor, processor_amount=allocation.returned,
        due_at=now, updated_at=now,
    )  # fmt: skip
    return Decision(False, settles=first, operation=sent)


async def release_all(ctx: Context, limit: int) -> None:
    """Release refunds still waiting though nothing holds them back any more (their
    collection settled, and the process stopped before it released them)."""
    pending = await ctx.store.operations_with_status(OperationStatus.PENDING, limit=limit)
    for pid in dict.fromkeys(op.payment_id for op in pending if waits(op)):
        await release(ctx, pid)
