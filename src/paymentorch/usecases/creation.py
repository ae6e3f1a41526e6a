"""Creating payments: one (idempotent by key), or many in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import cast

from paymentorch.domain import (
    Actor,
    Change,
    FieldError,
    IdempotencyConflict,
    NewPayment,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentStatus,
    ValidationError,
    ValidPayment,
    current_correlation_id,
    record_change,
    uuid7,
    with_plan,
)
from paymentorch.domain.collections import attempted
from paymentorch.domain.orchestration import capture_method_of, installment_key
from paymentorch.domain.plans import PlanTerms, new_plan
from paymentorch.domain.validation import same_request

from .context import Context, bad, describe
from .effects import consequences


async def create(
    ctx: Context,
    customer_id: str,
    amount: Decimal | int | str,
    *,
    actor: Actor,
    currency: str | None,
    idempotency_key: str | None,
    metadata: Mapping[str, str] | None,
    capture_method: str | None,
    plan: PlanTerms | None,
) -> tuple[Payment, bool]:
    """The new payment, or the one already made with the key: ``(payment, created)``."""
    ctx.policy.check(actor, "create")
    _check_capture_method(ctx, capture_method)
    if plan is not None and not isinstance(cast(object, plan), PlanTerms):
        raise bad("plan", "must be a PlanTerms", "type")
    valid = ctx.validation.validate_payment(
        NewPayment(customer_id, amount, currency, idempotency_key, metadata),
        default_currency=ctx.default_currency,
    )
    change = _creation(ctx, valid, actor, capture_method, plan)
    existing = await ctx.store.add(change)
    if existing is not None:
        await _same_creation(ctx, existing, valid, plan, capture_method)
        describe(existing)
        return existing, False
    payment = change.payment
    await ctx.remember(payment)
    describe(payment)
    ctx.telemetry.payments_created((payment,))
    return payment, True


async def create_many(ctx: Context, items: Sequence[NewPayment], *, actor: Actor) -> list[Payment]:
    """Many payments in one transaction, all or none; every problem listed at once."""
    ctx.policy.check(actor, "create_payments")
    valid: list[ValidPayment] = []
    errors: list[FieldError] = []
    seen_keys: dict[str, int] = {}
    for index, item in enumerate(cast(Sequence[object], items)):  # checked at run time
        prefix = f"items[{index}]."
        if not isinstance(item, NewPayment):
            errors.append(FieldError(prefix[:-1], "must be a NewPayment", "type"))
            continue
        checked, problems = ctx.validation.check_payment(
            item, default_currency=ctx.default_currency, prefix=prefix
        )
        errors.extend(problems)
        key = item.idempotency_key
        if isinstance(key, str) and key in seen_keys:
            message = f"repeats the key of items[{seen_keys[key]}]"
            errors.append(FieldError(prefix + "idempotency_key", message, "duplicate"))
        elif isinstance(key, str):
            seen_keys[key] = index
        if checked is not None:
            valid.append(checked)
    if errors:
        raise ValidationError(errors)
    changes = [_creation(ctx, v, actor) for v in valid]
    if changes:
        await ctx.store.add_many(changes)
    payments = [c.payment for c in changes]
    ctx.telemetry.payments_created(payments)
    return payments


def _check_capture_method(ctx: Context, capture_method: object) -> None:
    if capture_method is None:
        return
    if capture_method not in ("automatic", "manual"):
        message = "must be 'automatic', 'manual' or None"
    elif ctx.processor is None:
        message = "needs a processor: open the service with processor=..."
    else:
        return
    raise bad("capture_method", message, "choice")


async def _same_creation(
    ctx: Context,
    existing: Payment,
    valid: ValidPayment,
    terms: PlanTerms | None,
    capture_method: str | None,
) -> None:
    """Check that a repeat of a creation key asks for what it was created with: the
    payment, its plan and its capture method.

    Raises:
        IdempotencyConflict: it differs.
    """
    key = valid.idempotency_key or ""
    same_request(existing, valid, key)
    stored = await ctx.store.plan(existing.id) if existing.has_plan else None
    if (None if stored is None else stored.terms) != terms:
        raise IdempotencyConflict(key, "differs in plan")
    if capture_method_of(await ctx.store.operations(existing.id)) != capture_method:
        raise IdempotencyConflict(key, "differs in capture_method")


def _creation(
    ctx: Context,
    valid: ValidPayment,
    actor: Actor,
    capture_method: str | None = None,
    terms: PlanTerms | None = None,
) -> Change:
    now = ctx.clock()
    payment = Payment(
        id=uuid7(),
        customer_id=valid.customer_id,
        amount=valid.amount,
        currency=valid.currency,
        status=PaymentStatus.PENDING,
        created_at=now,
        updated_at=now,
        version=1,
        idempotency_key=valid.idempotency_key,
        metadata=valid.metadata,
        has_plan=terms is not None,
    )
    plan = None
    if terms is not None:  # the schedule is stored with the payment, pending
        plan = new_plan(payment.id, payment.amount, payment.currency, terms, now)
    intent = None
    if capture_method is not None:  # the processor is asked by the worker, not here
        # A plan takes installment 1 from the customer, never the order.
        automatic = capture_method == "automatic"
        kind = OperationKind.CHARGE if automatic else OperationKind.AUTHORIZE
        amount, number = payment.amount, None
        if plan is not None:
            amount = plan.installments[0].amount
            if kind is OperationKind.CHARGE:
                kind, number = OperationKind.INSTALLMENT, 1
                plan = attempted(plan, 1)
        intent = Operation(
            id=uuid7(),
            payment_id=payment.id,
            kind=kind,
            amount=amount,
            currency=payment.currency,
            status=OperationStatus.PENDING,
            created_at=now,
            updated_at=now,
            due_at=now,
            installment=number,
            idempotency_key=None if number is None else installment_key(number),
        )
    change = record_change(
        payment,
        "created",
        from_status=None,
        actor_id=actor.id,
        correlation_id=current_correlation_id(),
        operation=intent,
    )
    if plan is not None:
        change = with_plan(change, plan)
    return consequences(ctx, change, None)
