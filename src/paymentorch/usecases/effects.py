"""What a payment's change does beyond the payment: to its plan, and to its customer's
exposure under the credit policy."""

from __future__ import annotations

from decimal import Decimal

import attrs

from paymentorch.domain import Change, Payment, with_plan
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.plans import Plan, after_payment

from .context import Context


async def planned(
    ctx: Context,
    change: Change,
    before: Payment,
    action: str,
    *,
    amount: Decimal | None,
    installment: int | None = None,
) -> Change:
    """``change`` with what ``action`` does to the payment's plan, if it has one, and to
    its customer's exposure.

    Raises:
        ValidationError: the plan cannot take it (a collection or refund that no longer
            fits, an allocation read after a newer refund).
    """
    plan = await ctx.store.plan(before.id) if before.has_plan else None
    if plan is not None:
        after, events = after_payment(plan, action, at=change.payment.updated_at,
                                      amount=amount, installment=installment)  # fmt: skip
        if after is not plan:
            details = None if installment is None else {"installment": installment}
            change = with_plan(change, after, events, details=details)
    return with_credit(ctx, change, before, plan)


def with_credit(
    ctx: Context, change: Change, before: Payment | None, plan: Plan | None = None
) -> Change:
    """``change`` with what it does to its customer's exposure, which is counted in every
    currency (so that a credit policy turned on later starts from the truth), and the
    limit a growing one must stay under, where the policy applies."""
    credit, payment = ctx.credit, change.payment
    moved = exposure_of(payment, change.plan or plan) - exposure_of(before, plan)
    if not moved:
        return change
    limit = None
    if moved > 0 and credit is not None and credit.applies_to(payment):
        limit = credit.limit_of(payment.customer_id)
    return attrs.evolve(change, exposure=moved, credit_limit=limit)
