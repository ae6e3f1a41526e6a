"""What a payment's change does beyond the payment, pure: the move of its customer's
exposure, and its journal entry (the difference of the payment's standing after and
before it). The commit pipeline and the stores that decide a transition themselves
(``paymentorch.domain.transitions``) both build a change's consequences here."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from paymentorch.domain.actions import action
from paymentorch.domain.credit import CreditPolicy, exposure_of
from paymentorch.domain.errors import StoreError
from paymentorch.domain.ledger import (
    MANUAL,
    JournalEntry,
    journal_entry,
    plain_postings,
    postings,
    standing,
)
from paymentorch.domain.payment import Payment
from paymentorch.domain.plans import Plan
from paymentorch.domain.records import Change


def with_consequences(
    change: Change,
    before: Payment | None,
    plan: Plan | None = None,
    *,
    credit: CreditPolicy | None = None,
    clearing: str = MANUAL,
    operation_id: UUID | None = None,
    entry_id: UUID | None = None,
) -> Change:
    """``change`` with how far it moves its customer's exposure (counted in every
    currency, so that a credit policy turned on later starts from the truth), the limit
    a growing exposure must stay under where ``credit`` applies, and the journal entry of
    the money it moves (``entry_id`` its id, or a new one), from the payment (and its
    ``plan``) as they were before it."""
    payment, after_plan = change.payment, change.plan or plan
    moved = exposure_of(payment, after_plan) - exposure_of(before, plan)
    entry = _entry(
        change, before, plan, clearing=clearing, operation_id=operation_id, entry_id=entry_id
    )
    if not moved and entry is None:
        return change
    exposure, limit = moved or change.exposure, change.credit_limit
    if exposure > 0 and credit is not None and credit.applies_to(payment):
        limit = credit.limit_of(payment.customer_id)
    return _amended(change, exposure, limit, entry or change.journal)


def _entry(
    change: Change,
    before: Payment | None,
    plan: Plan | None,
    *,
    clearing: str,
    operation_id: UUID | None,
    entry_id: UUID | None,
) -> JournalEntry | None:
    """The entry of the money ``change`` moves: the difference of the payment's standing
    after and before it, so every entry balances and every movement posts by one rule."""
    payment, after_plan = change.payment, change.plan or plan
    if after_plan is None:  # a plain payment's standing reads only captured and refunded
        lines = plain_postings(before, payment, clearing=clearing)
    else:
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
        entry_id=entry_id,
    )


def _amended(
    change: Change, exposure: Decimal, credit_limit: Decimal | None, journal: JournalEntry | None
) -> Change:
    """``change`` with this exposure move, credit limit and journal entry."""
    # One constructor call, not one per consequence: the constructor costs half what
    # ``attrs.evolve`` does, and every change that moves money or exposure pays it.
    return Change(
        payment=change.payment,
        audit=change.audit,
        event=change.event,
        operation=change.operation,
        plan=change.plan,
        exposure=exposure,
        credit_limit=credit_limit,
        more_events=change.more_events,
        request=change.request,
        action=change.action,
        journal=journal,
    )
