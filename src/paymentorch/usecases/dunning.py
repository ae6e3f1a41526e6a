"""Collections on the worker's plans tick: a declined collection's next attempt (or a
stop), reminders before due dates, charge-offs past the policy's limit, and a person
resuming automatic collection."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from paymentorch.domain import (
    Actor,
    Change,
    InvalidTransition,
    Operation,
    Payment,
    PaymentStatus,
    parse_payment_id,
    with_plan,
)
from paymentorch.domain.collections import (
    CollectionPolicy,
    charge_off_due,
    declined,
    notice,
    reminded,
    reminders_due,
    resumed,
)
from paymentorch.domain.orchestration import installment_of
from paymentorch.domain.plans import RUNNING, Plan

from . import plans
from .context import Context
from .effects import consequences
from .pipeline import Decision, commit

BATCH = 500


async def failed(ctx: Context, change: Change, before: Payment, plan: Plan | None, *,
                 operation: Operation, code: str | None) -> Change:  # fmt: skip
    """``change`` (a declined collection of ``operation``'s installment, recorded on
    ``before``, read with its ``plan``) with the installment's next attempt on the
    ladder, or the plan's collection stopped, and the events a notice needs."""
    number = installment_of(operation)
    if plan is None or number is None:
        return change
    policy = ctx.collections
    if await _stale(ctx, plan, operation, number):
        after, stopped = plan, False  # what it says was settled since: the ladder stays
    else:
        after, stopped = declined(plan, number, code, change.payment.updated_at, policy)
    installment = after.installment(number)
    next_at = None if installment is None else installment.next_attempt_at
    details = {"collection": {
        **notice(after, number), "amount": str(operation.amount),
        "code": code, "hard": policy is not None and policy.is_hard(code),
        "attempts": 0 if installment is None else installment.attempts,
        "next_attempt_at": None if next_at is None else next_at.isoformat(),
    }}  # fmt: skip
    events = [("plan.collection_stopped", details)] if stopped else []
    return consequences(ctx, with_plan(change, after, events, details=details), before, plan)


async def _stale(ctx: Context, plan: Plan, operation: Operation, number: int) -> bool:
    """Whether a decline of ``operation`` comes after its installment was paid or
    cancelled, or after a newer attempt to collect it was made (a person resolving an
    old attempt): it moves no ladder and stops nothing."""
    installment = plan.installment(number)
    if installment is None or not installment.unpaid:
        return True
    mine = (operation.created_at, operation.id)
    return any(
        installment_of(op) == number and op.id != operation.id and (op.created_at, op.id) > mine
        for op in await ctx.store.operations(operation.payment_id)
    )


async def process(ctx: Context) -> int:
    """Write the reminders due and charge off the plans past the policy's limit, on the
    service's clock; how many plans changed (none without a policy)."""
    policy = ctx.collections
    if policy is None:
        return 0
    now = ctx.clock()
    changed = 0
    if policy.reminders:
        until = now + max(policy.reminders)
        for pid in await ctx.store.plans_to_remind(now, until, min(policy.reminders)):
            changed += await _remind(ctx, pid, policy)
    return changed + await _charge_offs(ctx, policy, now)


async def _remind(ctx: Context, pid: UUID, policy: CollectionPolicy) -> int:
    async def decide(_fresh: bool) -> Decision[int]:
        current, before = await ctx.read_with_plan(pid)
        now = ctx.clock()
        due = [] if before is None else reminders_due(before, policy, now)
        if before is None or not due or current.status is not PaymentStatus.CONFIRMED:
            return Decision(0)
        events = [
            ("plan.installment_due_soon", {"reminder": {
                **notice(before, number),
                "before_seconds": int(offset.total_seconds()),
            }})
            for number, offset in due
        ]  # fmt: skip
        change = plans.plan_change(ctx, current, before, reminded(before, due), "reminded",
                                   actor_id=Actor.system().id, at=now, events=events[1:],
                                   details=events[0][1])  # fmt: skip
        return Decision(1, change=change)

    return await commit(ctx, decide, what="a reminder")


async def _charge_offs(ctx: Context, policy: CollectionPolicy, now: datetime) -> int:
    """Charge off every running plan whose oldest unpaid due date is ``charge_off_after``
    past (oldest first: the store lists plans by that date)."""
    cutoff = now - policy.charge_off_after
    changed = 0
    after = None
    while batch := await ctx.store.plans_by_age(after=after, limit=BATCH):
        for pid, oldest in batch:
            if oldest > cutoff:
                return changed
            changed += await _charge_off(ctx, pid, policy)
        after = batch[-1][1], batch[-1][0]
    return changed


async def _charge_off(ctx: Context, pid: UUID, policy: CollectionPolicy) -> int:
    days = policy.charge_off_after.days
    reason = f"charged off automatically: {days} days past due"

    def due(plan: Plan) -> bool:
        return charge_off_due(plan, policy, ctx.clock())

    written = await plans.write_off(ctx, pid, Actor.system().id, reason, when=due)
    return 0 if written is None else 1  # None: moved on, or money under way (next tick)


async def resume(ctx: Context, payment_id: UUID | str, actor: Actor) -> Plan:
    """Resume the automatic collection of a plan whose collection stopped: what is due is
    collected at the next tick, each installment on a new retry ladder.

    Raises:
        InvalidTransition: no running plan, or its collection did not stop.
    """
    ctx.policy.check(actor, "resume_collection")
    pid = parse_payment_id(payment_id)

    async def decide(_fresh: bool) -> Decision[Plan]:
        current, before = await ctx.read_with_plan(pid)
        why = _not_resumable(current, before)
        if why is not None or before is None:
            raise InvalidTransition(pid, current.status, "resume collection", why)
        now = ctx.clock()
        after = resumed(before, now)
        change = plans.plan_change(ctx, current, before, after, "collection_resumed",
                                   actor_id=actor.id, at=now)  # fmt: skip
        return Decision(after, change=change)

    return await commit(ctx, decide, what="resuming collection")


def _not_resumable(payment: Payment, plan: Plan | None) -> str | None:
    if payment.status is not PaymentStatus.CONFIRMED or plan is None:
        return "it has no running plan"
    if plan.status not in RUNNING:
        return f"its plan is {plan.status.value}"
    if not plan.collection_stopped:
        return "its collection did not stop"
    return None
