"""What a payment's change does beyond the payment: to its plan, to its customer's
exposure under the credit policy, and to the books (its journal entry)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from paymentorch.domain import Change, Payment, with_plan
from paymentorch.domain.consequences import with_consequences
from paymentorch.domain.ledger import MANUAL
from paymentorch.domain.plans import Plan, after_payment

from .context import Context
from .pipeline import plan_of


async def planned(
    ctx: Context,
    change: Change,
    before: Payment,
    kind: str,
    *,
    amount: Decimal | None,
    installment: int | None = None,
    clearing: str | None = None,
    operation_id: UUID | None = None,
    plan: Plan | None = None,
) -> Change:
    """``change`` with what ``kind`` does to the payment's plan, if it has one, to its
    customer's exposure and to the books (``clearing``: the processor that moved the
    money, None when it moved by hand or inline). ``plan``: the plan as read with
    ``before``, if it was (else it is read here, as it stood at ``before``'s version).

    Raises:
        LostRace: the payment has changed since ``before`` was read.
        ValidationError: the plan cannot take it (a collection or refund that no longer
            fits, an allocation read after a newer refund).
    """
    if not before.has_plan:
        plan = None
    elif plan is None:
        plan = await plan_of(ctx, before)
    if plan is not None:
        after, events = after_payment(plan, kind, at=change.payment.updated_at,
                                      amount=amount, installment=installment)  # fmt: skip
        if after is not plan:
            details = None if installment is None else {"installment": installment}
            change = with_plan(change, after, events, details=details)
    return consequences(ctx, change, before, plan, clearing=clearing, operation_id=operation_id)


def consequences(
    ctx: Context,
    change: Change,
    before: Payment | None,
    plan: Plan | None = None,
    *,
    clearing: str | None = None,
    operation_id: UUID | None = None,
) -> Change:
    """``change`` with its exposure move (under the credit policy's limit, where it
    applies) and its journal entry, from the payment (and its ``plan``) as they were
    before it."""
    return with_consequences(
        change, before, plan, credit=ctx.credit, clearing=clearing or MANUAL,
        operation_id=operation_id,
    )  # fmt: skip
