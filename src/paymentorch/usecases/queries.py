"""Reading: a payment, pages and counts of payments, a summary, the audit trail, a
payment's operations and plan, a customer's exposure, the operations waiting for a person."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from paymentorch.domain import (
    AuditEntry,
    FieldError,
    Operation,
    OperationStatus,
    Payment,
    PaymentNotFound,
    PaymentStatus,
    ValidationError,
    parse_payment_id,
)
from paymentorch.domain.cursor import encode_cursor, page_position
from paymentorch.domain.money import at_scale
from paymentorch.domain.plans import Plan
from paymentorch.domain.results import Page, PaymentSummary
from paymentorch.domain.validation import check_filters, check_period

from .context import Context, bad, describe


async def get(ctx: Context, payment_id: UUID | str) -> Payment:
    """The payment, through the cache."""
    payment = await ctx.load(parse_payment_id(payment_id))
    describe(payment)
    return payment


async def page(
    ctx: Context,
    *,
    status: PaymentStatus | str | None,
    customer_id: str | None,
    limit: int,
    cursor: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> Page:
    """One page of payments, newest first."""
    errors: list[FieldError] = []
    wanted = check_filters(status, customer_id, errors)
    check_period(created_from, created_to, errors)
    after = page_position(limit, cursor, errors)
    if errors:
        raise ValidationError(errors)
    items = await ctx.store.list_payments(
        status=wanted,
        customer_id=customer_id,
        limit=limit + 1,
        after=after,
        created_from=created_from,
        created_to=created_to,
    )
    if len(items) > limit:
        return Page(items[:limit], encode_cursor(items[limit - 1]))
    return Page(items, None)


async def count(
    ctx: Context,
    *,
    status: PaymentStatus | str | None,
    customer_id: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> int:
    """How many payments match the filters."""
    errors: list[FieldError] = []
    wanted = check_filters(status, customer_id, errors)
    check_period(created_from, created_to, errors)
    if errors:
        raise ValidationError(errors)
    return await ctx.store.count(
        status=wanted, customer_id=customer_id, created_from=created_from, created_to=created_to
    )


async def summary(
    ctx: Context,
    *,
    customer_id: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> PaymentSummary:
    """Counts by status, totals by currency and counts by day."""
    errors: list[FieldError] = []
    check_filters(None, customer_id, errors)
    check_period(created_from, created_to, errors)
    if errors:
        raise ValidationError(errors)
    rows = await ctx.store.summarize(
        customer_id=customer_id, created_from=created_from, created_to=created_to
    )
    return PaymentSummary.of(rows)


async def audit_trail(ctx: Context, payment_id: UUID | str) -> list[AuditEntry]:
    """Every change to the payment, oldest first."""
    pid = parse_payment_id(payment_id)
    trail = await ctx.store.audit_trail(pid)
    if not trail:
        raise PaymentNotFound(pid)  # every payment has its creation entry
    return trail


async def operations(ctx: Context, payment_id: UUID | str) -> list[Operation]:
    """The payment's money movements, oldest first."""
    pid = parse_payment_id(payment_id)
    found = await ctx.store.operations(pid)
    if not found and await ctx.store.get(pid) is None:
        raise PaymentNotFound(pid)
    return found


def not_a_plan() -> ValidationError:
    """The error of a payment without a plan where one is needed."""
    return bad("payment_id", "is not paid in installments", "plan")


async def plan(ctx: Context, payment_id: UUID | str) -> Plan:
    """The payment's installment plan."""
    pid = parse_payment_id(payment_id)
    found = await ctx.store.plan(pid)
    if found is None:
        await ctx.read(pid, fresh=True)  # PaymentNotFound if there is no payment
        raise not_a_plan()
    return found


async def exposure(ctx: Context, customer_id: str) -> Decimal:
    """What the customer owes now in the credit policy's currency (0 without one), at
    the currency's scale on every store (``0.00`` in USD)."""
    if ctx.credit is None:
        return Decimal(0)
    currency = ctx.credit.currency
    return at_scale(await ctx.store.exposure(customer_id, currency), currency)


async def needing_attention(ctx: Context, limit: int) -> list[Operation]:
    """Operations whose outcome no lookup could settle."""
    return await ctx.store.operations_with_status(OperationStatus.NEEDS_ATTENTION, limit=limit)
