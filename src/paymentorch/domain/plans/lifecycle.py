"""What happens to a plan: activation, payments, waivers, refunds, closing, lateness,
charge-off."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs

from paymentorch.domain.errors import FieldError, ValidationError
from paymentorch.domain.plans.fees import LateFeePolicy, fees_due, overdue
from paymentorch.domain.plans.model import (
    ACCEPTS_PAYMENT,
    RUNNING,
    Installment,
    InstallmentStatus,
    LateFee,
    Plan,
    PlanStatus,
    PlanTerms,
    installment_of,
)
from paymentorch.domain.plans.splits import Allocation, allocate_refund, schedule

_ZERO = Decimal(0)


def new_plan(
    payment_id: UUID, amount: Decimal, currency: str, terms: PlanTerms, start: datetime
) -> Plan:
    """The plan of a new order: ``pending`` until its payment is confirmed."""
    installments = tuple(schedule(amount, currency, terms, start))
    return Plan(payment_id, amount, currency, terms, PlanStatus.PENDING, installments)


def _settled_status(plan: Plan) -> PlanStatus:
    if plan.status is PlanStatus.CHARGED_OFF:
        return plan.status  # for good: a recovery or a refund later does not revive it
    unpaid = [i for i in plan.installments if i.unpaid]
    if not unpaid and not any(f.unpaid for f in plan.late_fees):
        return (
            PlanStatus.CANCELLED
            if refunded_total(plan) == plan.order_amount
            else (PlanStatus.COMPLETED)
        )
    if any(i.status is InstallmentStatus.OVERDUE for i in unpaid):
        return PlanStatus.DELINQUENT
    return PlanStatus.ACTIVE


def _settled(plan: Plan) -> Plan:
    """``plan`` with the status its installments and fees give it, and no retry scheduled
    for an installment no longer owed, nor for any once the plan stopped running or its
    automatic collection stopped."""
    plan = attrs.evolve(plan, status=_settled_status(plan))
    return without_retries(plan)


def without_retries(plan: Plan) -> Plan:
    """``plan`` with ``next_attempt_at`` cleared where nothing will be retried: an
    installment paid or cancelled, or every one once the plan is not running or its
    automatic collection stopped."""
    stopped = plan.status not in RUNNING or plan.collection_stopped
    if not any(i.next_attempt_at is not None and (stopped or not i.unpaid)
               for i in plan.installments):  # fmt: skip
        return plan
    return attrs.evolve(plan, installments=tuple(
        attrs.evolve(i, next_attempt_at=None) if stopped or not i.unpaid else i
        for i in plan.installments
    ))  # fmt: skip


def refunded_total(plan: Plan) -> Decimal:
    """What refunds took off the order: reductions of what was owed, and money back.

    A waived installment keeps its amount (it was forgiven, not refunded); one a refund
    cancelled is reduced to zero.
    """
    unpaid = sum(
        (
            i.amount
            for i in plan.installments
            if i.unpaid or i.status is InstallmentStatus.CANCELLED
        ),
        _ZERO,
    )
    paid = sum(
        (i.amount - i.refunded_amount for i in plan.installments
         if i.status is InstallmentStatus.PAID),
        _ZERO,
    )  # fmt: skip
    return plan.order_amount - unpaid - paid


def _replace(plan: Plan, installment: Installment) -> tuple[Installment, ...]:
    return tuple(installment if i.number == installment.number else i for i in plan.installments)


def activate(plan: Plan, at: datetime) -> Plan:
    """The order is confirmed: installment 1, due at purchase, is paid; the plan runs."""
    first = attrs.evolve(installment_of(plan, 1), status=InstallmentStatus.PAID, paid_at=at)
    active = attrs.evolve(plan, installments=_replace(plan, first))
    return _settled(active)


def pay(plan: Plan, number: int, at: datetime, *, amount: Decimal | None = None) -> Plan:
    """Installment ``number`` is paid with its unpaid late fees (``amount``, when given,
    is what was collected: it must be exactly that); the plan is completed when nothing
    is owed. On a charged-off plan it is a recovery: the plan stays charged off.

    Raises:
        ValidationError: no such installment, it is not owed (paid or cancelled), the
            plan is neither running nor charged off, or ``amount`` is not what the
            installment asks for.
    """
    owed = _owed(plan, number, ACCEPTS_PAYMENT)
    due = plan.collection_amount(number)
    if amount is not None and amount != due:
        why = f"{amount} was collected, but installment {number} asks for {due}"
        raise ValidationError([FieldError("amount", why, "mismatch")])
    paid = attrs.evolve(owed, status=InstallmentStatus.PAID, paid_at=at)
    after = attrs.evolve(
        plan,
        installments=_replace(plan, paid),
        late_fees=_settle_fees(plan.late_fees, {number}, paid_at=at),
    )
    return _settled(after)


def waive(plan: Plan, number: int, at: datetime) -> Plan:
    """Installment ``number`` is forgiven with its unpaid fees: no longer owed
    (``cancelled``, its amount kept to show what was waived); the plan is completed when
    nothing else is owed.

    Raises:
        ValidationError: as ``pay``; a charged-off plan is not waived (it was written
            off whole).
    """
    waived = attrs.evolve(_owed(plan, number, RUNNING), status=InstallmentStatus.CANCELLED)
    after = attrs.evolve(
        plan,
        installments=_replace(plan, waived),
        late_fees=_settle_fees(plan.late_fees, {number}, waived_at=at),
    )
    return _settled(after)


def _settle_fees(
    fees: tuple[LateFee, ...],
    numbers: set[int],
    *,
    paid_at: datetime | None = None,
    waived_at: datetime | None = None,
) -> tuple[LateFee, ...]:
    """``fees`` with the unpaid ones of installments ``numbers`` paid or waived."""
    return tuple(
        attrs.evolve(f, paid_at=paid_at, waived_at=waived_at)
        if f.unpaid and f.installment in numbers
        else f
        for f in fees
    )


def _owed(plan: Plan, number: int, statuses: frozenset[PlanStatus]) -> Installment:
    installment = installment_of(plan, number)
    if plan.status not in statuses or not installment.unpaid:
        why = f"installment {number} is {installment.status.value} on a {plan.status.value} plan"
        raise ValidationError([FieldError("number", why, "state")])
    return installment


def refund_on_plan(plan: Plan, amount: Decimal, at: datetime) -> tuple[Plan, Allocation]:
    """A refund of ``amount`` on a running, completed or charged-off plan, allocated by
    its terms; an installment it cancels takes its unpaid fees with it (waived)."""
    done = allocate_refund(plan.installments, amount, plan.currency, plan.terms.refund_allocation)
    cancelled = {
        i.number
        for before, i in zip(plan.installments, done.installments, strict=True)
        if before.unpaid and not i.unpaid
    }
    after = attrs.evolve(
        plan,
        installments=done.installments,
        late_fees=_settle_fees(plan.late_fees, cancelled, waived_at=at),
    )
    return _settled(after), done


def close(plan: Plan, at: datetime) -> Plan:
    """The order failed or was cancelled: nothing is owed any more."""
    cancelled = tuple(
        attrs.evolve(i, status=InstallmentStatus.CANCELLED, amount=_ZERO) if i.unpaid else i
        for i in plan.installments
    )
    numbers = {i.number for i in plan.installments}
    return without_retries(attrs.evolve(
        plan,
        status=PlanStatus.CANCELLED,
        installments=cancelled,
        late_fees=_settle_fees(plan.late_fees, numbers, waived_at=at),
    ))  # fmt: skip


def charge_off(plan: Plan) -> Plan:
    """A running plan given up on: ``charged_off``, for good. Its installments and fees
    stay as they are, unpaid ones still owed (the customer's exposure keeps counting
    them) and, in the books, written off; nothing more is collected or charged, and a
    payment later is a recovery."""
    return without_retries(attrs.evolve(plan, status=PlanStatus.CHARGED_OFF))


def mark_overdue(
    plan: Plan,
    policy: LateFeePolicy | None,
    now: datetime,
    busy: frozenset[int] = frozenset(),
) -> tuple[Plan, list[int], list[LateFee]]:
    """Installments past due (and grace) become overdue, the plan delinquent, and the
    policy's fees are charged; returns the plan, the newly overdue numbers and the fees.

    A ``busy`` installment (a collection of it under way, or held back by a refund that
    waits) is not late yet: it is neither marked nor charged.
    """
    if plan.status not in RUNNING:
        return plan, [], []  # nothing is due before the order is confirmed, or after
    late = [
        i.number
        for i in plan.installments
        if i.status is InstallmentStatus.SCHEDULED and overdue(i, policy, now, busy)
    ]
    installments = tuple(
        attrs.evolve(i, status=InstallmentStatus.OVERDUE) if i.number in late else i
        for i in plan.installments
    )
    after = attrs.evolve(plan, installments=installments)
    fees = fees_due(after, policy, now, busy) if policy is not None else []
    after = attrs.evolve(after, late_fees=after.late_fees + tuple(fees))
    return _settled(after), late, fees


PlanEvents = list[tuple[str, dict[str, Any]]]


def after_payment(
    plan: Plan,
    action: str,
    *,
    at: datetime,
    amount: Decimal | None = None,
    installment: int | None = None,
) -> tuple[Plan, PlanEvents]:
    """What a payment's ``action`` does to its plan, and the plan events it raises:
    confirming or capturing activates it, failing or cancelling closes it, a collected
    installment (``amount``, exactly what it asks for) is paid, a refund (``amount``) is
    allocated by its terms; other actions leave it as it is."""
    if action in ("confirm", "capture"):
        return activate(plan, at), [("plan.activated", {})]
    if action in ("fail", "cancel"):
        return close(plan, at), [("plan.cancelled", {})]
    if action == "installment_paid" and installment is not None:
        paid = pay(plan, installment, at, amount=amount)
        done: PlanEvents = [("plan.completed", {})] if paid.status is PlanStatus.COMPLETED else []
        return paid, done
    if action == "refund" and amount is not None:
        after, allocation = refund_on_plan(plan, amount, at)
        events: PlanEvents = []
        if after.status is not plan.status and after.status in (
            PlanStatus.COMPLETED,
            PlanStatus.CANCELLED,
        ):
            events.append((f"plan.{after.status.value}", {}))
        refund = {
            "reduced": str(allocation.reduced),
            "returned": str(allocation.returned),
            "forgiven": str(allocation.forgiven),
        }
        return after, [("plan.refund_allocated", {"refund": refund}), *events]
    return plan, []
