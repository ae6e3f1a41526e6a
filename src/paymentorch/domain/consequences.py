"""What a payment's change does beyond the payment, pure: the move of its customer's
exposure, and its journal entry (the difference of the payment's standing after and
before it). The commit pipeline and the stores that decide a transition themselves
(``paymentorch.domain.transitions``) both build a change's consequences here."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from paymentorch.domain.actions import action
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.errors import StoreError
from paymentorch.domain.ledger import (
    MANUAL,
    JournalEntry,
    journal_entry,
    moves_money,
    postings,
    standing,
)
from paymentorch.domain.payment import Payment
from paymentorch.domain.plans import Plan
from paymentorch.domain.records import Change


def with_exposure(change: Change, before: Payment | None, plan: Plan | None = None) -> Change:
    """``change`` with how far it moves its customer's exposure (counted in every
    currency, so that a credit policy turned on later starts from the truth), from the
    payment (and its ``plan``) as they were before it."""
    payment = change.payment
    moved = exposure_of(payment, change.plan or plan) - exposure_of(before, plan)
    return _amended(change, moved, change.journal) if moved else change


def booked(
    change: Change,
    before: Payment | None,
    plan: Plan | None = None,
    *,
    clearing: str = MANUAL,
    operation_id: UUID | None = None,
    entry_id: UUID | None = None,
) -> Change:
    """``change`` with the journal entry of the money it moves (``entry_id`` its id, or a
    new one): the difference of the payment's standing after and before it, so every
    entry balances and every movement posts by one rule."""
    payment, after_plan = change.payment, change.plan or plan
    if after_plan is None and not moves_money(before, payment):
        return change  # a plain payment whose amounts stay: nothing to post, nothing to add up
    lines = postings(
        standing(before, plan),
        standing(payment, after_plan),
        customer=payment.customer_id,
        currency=payment.currency,
        clearing=clearing,
    )
    if not lines:
        return change
    kind = action(change.action).ledger
    if kind is None:  # a bug: the table names the entry of every action that moves money
        raise StoreError(f"{change.action} moves money but the table names no journal entry")
    operation = change.operation
    entry = journal_entry(
        kind,
        payment.id,
        lines,
        at=payment.updated_at,
        operation_id=operation_id or (None if operation is None else operation.id),
        correlation_id=change.audit.correlation_id,
        entry_id=entry_id,
    )
    return _amended(change, change.exposure, entry)


def _amended(change: Change, exposure: Decimal, journal: JournalEntry | None) -> Change:
    """``change`` with this exposure move and journal entry."""
    # Most changes take both: the constructor costs half what ``attrs.evolve`` does.
    return Change(
        payment=change.payment,
        audit=change.audit,
        event=change.event,
        operation=change.operation,
        plan=change.plan,
        exposure=exposure,
        credit_limit=change.credit_limit,
        more_events=change.more_events,
        request=change.request,
        action=change.action,
        journal=journal,
    )
