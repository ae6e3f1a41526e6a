"""What a payment's change does beyond the payment: to its plan, to its customer's
exposure under the credit policy, and to the books (its journal entry)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs

from paymentorch.domain import Change, Payment, StoreError, with_plan
from paymentorch.domain.actions import action
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.ledger import (
    MANUAL,
    JournalEntry,
    journal_entry,
    moves_money,
    postings,
    standing,
)
from paymentorch.domain.plans import Plan, after_payment

from .context import Context


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
) -> Change:
    """``change`` with what ``kind`` does to the payment's plan, if it has one, to its
    customer's exposure and to the books (``clearing``: the processor that moved the
    money, None when it moved by hand or inline).

    Raises:
        ValidationError: the plan cannot take it (a collection or refund that no longer
            fits, an allocation read after a newer refund).
    """
    plan = await ctx.store.plan(before.id) if before.has_plan else None
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
    """``change`` with its exposure move and its journal entry, from the payment (and its
    ``plan``) as they were before it."""
    effects: dict[str, Any] = _credit(ctx, change, before, plan)
    entry = _entry(change, before, plan, clearing=clearing or MANUAL, operation_id=operation_id)
    if entry is not None:
        effects["journal"] = entry
    return attrs.evolve(change, **effects) if effects else change


def _credit(
    ctx: Context, change: Change, before: Payment | None, plan: Plan | None
) -> dict[str, Any]:
    """The exposure is counted in every currency (so that a credit policy turned on later
    starts from the truth), with the limit a growing one must stay under, where the
    policy applies."""
    credit, payment = ctx.credit, change.payment
    moved = exposure_of(payment, change.plan or plan) - exposure_of(before, plan)
    if not moved:
        return {}
    limit = None
    if moved > 0 and credit is not None and credit.applies_to(payment):
        limit = credit.limit_of(payment.customer_id)
    return {"exposure": moved, "credit_limit": limit}


def _entry(
    change: Change,
    before: Payment | None,
    plan: Plan | None,
    *,
    clearing: str,
    operation_id: UUID | None,
) -> JournalEntry | None:
    """The journal entry of the money ``change`` moves: the difference of the payment's
    standing after and before it, so every entry balances and every movement posts by
    one rule."""
    payment = change.payment
    after_plan = change.plan or plan
    if after_plan is None and not moves_money(before, payment):
        return None
    lines = postings(
        standing(before, plan),
        standing(payment, after_plan),
        customer=payment.customer_id,
        currency=payment.currency,
        clearing=clearing,
    )
    if not lines:
        return None
    kind = action(change.action).ledger
    if kind is None:  # a bug: the table names the entry of every action that moves money
        raise StoreError(f"{change.action} moves money but the table names no journal entry")
    operation = change.operation
    return journal_entry(
        kind,
        payment.id,
        lines,
        at=payment.updated_at,
        operation_id=operation_id or (None if operation is None else operation.id),
        correlation_id=change.audit.correlation_id,
    )
