"""Installment plans: installments paid or waived by hand, a plan charged off by hand,
collections queued for the worker, overdue installments and their late fees."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

from paymentorch.domain import (
    Actor,
    Change,
    IdempotencyConflict,
    InvalidTransition,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentError,
    PaymentStatus,
    current_correlation_id,
    parse_payment_id,
    record_change,
    touched,
    uuid7,
    with_plan,
)
from paymentorch.domain.actions import IN_FLIGHT
from paymentorch.domain.collections import attempted, next_collection
from paymentorch.domain.orchestration import installment_key, installment_of
from paymentorch.domain.payment import money_text
from paymentorch.domain.plans import RUNNING, Plan, PlanEvents, PlanStatus, mark_overdue, pay, waive
from paymentorch.domain.plans import charge_off as charge_off_plan

from . import queries, refunds
from .context import Context, bad
from .effects import consequences
from .pipeline import Decision, commit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_COLLECTIONS = 10_000
"""The most installments one call of ``collect_due`` looks at."""


async def settle_installment(
    ctx: Context, payment_id: UUID | str, number: int, actor: Actor, waived: str | None
) -> Plan:
    """Installment ``number`` paid by hand, or (with a reason in ``waived``) forgiven."""
    ctx.policy.check(actor, "pay_installment" if waived is None else "waive_installment")
    pid = parse_payment_id(payment_id)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise bad("number", "must be a whole number from 1", "range")

    async def decide(_fresh: bool) -> Decision[Plan]:
        current, before = await ctx.read_with_plan(pid)
        if before is None:
            raise queries.not_a_plan()
        if number in await busy_installments(ctx, current, before):
            why = (
                "a refund of the plan is under way: it changes what is owed"
                if current.pending_refunds
                else f"a collection of installment {number} is under way: settle it first"
            )
            raise bad("number", why, "busy")
        now = ctx.clock()
        after = pay(before, number, now) if waived is None else waive(before, number, now)
        events: PlanEvents = []
        if after.status is PlanStatus.COMPLETED:
            events.append(("plan.completed", {}))
        kind = "installment_paid" if waived is None else "waived"
        if kind == "installment_paid" and before.status is PlanStatus.CHARGED_OFF:
            kind = "recovered"  # money for what was written off
        change = plan_change(
            ctx, current, before, after, kind, actor_id=actor.id, at=now, events=events,
            details={"installment": number}, reason=waived,
        )  # fmt: skip
        return Decision(after, change=change)

    return await commit(ctx, decide, what="an installment")


async def charge_off(ctx: Context, payment_id: UUID | str, actor: Actor, reason: str) -> Plan:
    """Give up on collecting a running plan: it is charged off and what it still owes
    (every unpaid installment, due or not, and every unpaid fee) is written off.

    Raises:
        ValidationError: a bad id, no reason (or one over the policy's length), or money
            of the plan under way (a collection or a refund): settle it first.
        InvalidTransition: the payment is not Confirmed or has no running plan (none,
            completed, cancelled, or charged off already).
    """
    ctx.policy.check(actor, "charge_off")
    pid = ctx.id_and_reason(payment_id, reason, required=True)
    # Without ``when`` every refusal raises: a plan always comes back.
    return cast(Plan, await write_off(ctx, pid, actor.id, reason))


async def write_off(
    ctx: Context, pid: UUID, actor_id: str, reason: str,
    *, when: Callable[[Plan], bool] | None = None,
) -> Plan | None:  # fmt: skip
    """Charge off ``pid``'s plan (``charge_off``). With ``when`` (the worker's check of
    the plan as it is now), a plan it refuses, or that cannot be charged off now, is left
    as it is and None returned instead of an error."""

    async def decide(_fresh: bool) -> Decision[Plan | None]:
        current, before = await ctx.read_with_plan(pid)
        if when is not None and (before is None or before.status not in RUNNING
                                 or not when(before)):  # fmt: skip
            return Decision(None)
        if current.status is not PaymentStatus.CONFIRMED or before is None:
            raise InvalidTransition(pid, current.status, "charge off", "it has no running plan")
        if before.status not in RUNNING:
            raise InvalidTransition(pid, current.status, "charge off",
                                    f"its plan is {before.status.value}")  # fmt: skip
        if current.pending_refunds or _collecting(await busy_installments(ctx, current, before),
                                                  before):  # fmt: skip
            if when is not None:
                return Decision(None)  # the next tick looks again
            why = "money of the plan (a collection or a refund) is under way: settle it first"
            raise bad("payment_id", why, "busy")
        after, now = charge_off_plan(before), ctx.clock()
        written_off = money_text(before.owed + before.fees_owed, before.currency)
        # The customer is the snapshot's own customer_id (sealed at rest with encryption).
        details = {"charge_off": {"amount": written_off, "currency": before.currency}}
        change = plan_change(ctx, current, before, after, "charge_off", actor_id=actor_id,
                             at=now, details=details, reason=reason)  # fmt: skip
        return Decision(after, change=change)

    return await commit(ctx, decide, what="a charge-off")


async def collect_due(ctx: Context, limit: int) -> int:
    """Queue the collection of installments due now (with a processor): for each plan
    with none under way, its oldest installment due that was never tried or whose retry
    is due; how many were queued.

    Raises:
        ValidationError: ``limit`` is not a whole number from 1 to ``MAX_COLLECTIONS``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_COLLECTIONS:
        raise bad("limit", f"must be a whole number from 1 to {MAX_COLLECTIONS}", "range")
    if ctx.processor is None:
        return 0
    await refunds.release_all(ctx, limit)
    queued = 0
    for pid in dict.fromkeys(
        pid for pid, _ in await ctx.store.installments_due(ctx.clock(), limit)
    ):
        if await _queue(ctx, pid):
            queued += 1
    return queued


async def _queue(ctx: Context, pid: UUID) -> bool:
    system = Actor.system()

    async def decide(_fresh: bool) -> Decision[bool]:
        current, plan = await ctx.read_with_plan(pid)
        now = ctx.clock()
        due = None if plan is None else next_collection(plan, now)
        if (
            plan is None
            or due is None
            or current.status is not PaymentStatus.CONFIRMED
            or current.pending_refunds  # a refund under way may cancel the installment
            or _collecting(await busy_installments(ctx, current, plan), plan)
        ):
            return Decision(False)
        number, after = due.number, attempted(plan, due.number)
        operation = Operation(
            id=uuid7(),
            payment_id=pid,
            kind=OperationKind.INSTALLMENT,
            amount=plan.collection_amount(number),  # the installment and its late fees
            currency=current.currency,
            status=OperationStatus.PENDING,
            created_at=now,
            updated_at=now,
            reason=f"installment {number} of {len(plan.installments)}",
            idempotency_key=installment_key(number, due.attempts + 1),
            due_at=now,
            installment=number,
        )
        change = plan_change(ctx, current, plan, after, "collecting", actor_id=system.id, at=now,
                             details={"installment": number}, operation=operation)  # fmt: skip
        return Decision(True, change=change)

    async def collected_once(refused: PaymentError) -> bool | None:
        # The key of this attempt is held: another worker queued it first.
        return False if isinstance(refused, IdempotencyConflict) else None

    return await commit(ctx, decide, what="a collection", replay=collected_once)


def _collecting(busy: frozenset[int], plan: Plan) -> bool:
    """Whether a collection of an installment still owed is under way: one collection of
    a plan at a time. (One of an installment paid meanwhile, by hand, or twice, which a
    person settles, does not hold back the others.)"""
    return any(i.number in busy for i in plan.installments if i.unpaid)


async def overdue(ctx: Context) -> int:
    """Mark late installments overdue and charge the fees; how many plans changed."""
    now = ctx.clock()
    # A coarse filter (a currency without a policy has no grace); the plan decides.
    repeats = [p.grace + p.repeat_after for p in ctx.late_fees.values()]
    repeat_before = now - min(repeats) if repeats else EPOCH
    changed = 0
    for pid in await ctx.store.plans_due(now, repeat_before):
        if await _mark_overdue(ctx, pid, now):
            changed += 1
    return changed


async def _mark_overdue(ctx: Context, pid: UUID, now: datetime) -> bool:
    async def decide(_fresh: bool) -> Decision[bool]:
        current, before = await ctx.read_with_plan(pid)
        if before is None:
            return Decision(False)
        busy = await busy_installments(ctx, current, before, to_be_late=True)
        policy = ctx.late_fees.get(before.currency)
        after, late, fees = mark_overdue(before, policy, now, busy)
        if not late and not fees:
            return Decision(False)
        events: PlanEvents = [("plan.installment_overdue", {"installment": n}) for n in late]
        for fee in fees:
            charged = {"installment": fee.installment, "amount": str(fee.amount)}
            events.append(("plan.late_fee_charged", {"late_fee": charged}))
        kind = "installment_late" if late else "late_fee_charged"
        change = plan_change(ctx, current, before, after, kind, actor_id=Actor.system().id,
                             at=now, events=events[1:], details=events[0][1])  # fmt: skip
        return Decision(True, change=change)

    return await commit(ctx, decide, what="overdue processing")


async def busy_installments(
    ctx: Context, payment: Payment, plan: Plan, *, to_be_late: bool = False
) -> frozenset[int]:
    """Installments money is moving for: a collection of them is under way, or the
    library holds them back (no collection is sent while a refund waits).
    ``to_be_late`` adds those the processor was not asked for yet: an installment is
    late only once its collection was tried (or when nothing collects them: no
    processor, or the plan's automatic collection stopped)."""
    if payment.pending_refunds:
        return frozenset(i.number for i in plan.installments)
    operations = await ctx.store.operations(payment.id)
    busy = {
        number
        for op in operations
        if op.status in IN_FLIGHT and (number := installment_of(op)) is not None
    }
    if to_be_late and ctx.processor is not None and not plan.collection_stopped:
        tried = {installment_of(op) for op in operations}
        busy |= {i.number for i in plan.installments if i.number not in tried}
    return frozenset(busy)


def plan_change(
    ctx: Context,
    current: Payment,
    before: Plan,
    after: Plan,
    kind: str,
    *,
    actor_id: str,
    at: datetime,
    events: Sequence[tuple[str, Mapping[str, object]]] = (),
    details: Mapping[str, object] | None = None,
    reason: str | None = None,
    operation: Operation | None = None,
) -> Change:
    """A change of the payment's plan (the payment one version on, its status unchanged)
    with its entry, events, exposure and ``operation``."""
    change = record_change(
        touched(current, at=at),
        kind,
        from_status=current.status,
        actor_id=actor_id,
        reason=reason,
        correlation_id=current_correlation_id(),
        operation=operation,
    )
    change = with_plan(change, after, events, details=details)
    return consequences(ctx, change, current, before)
