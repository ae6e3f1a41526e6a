"""Follow-ups on money a processor holds: which of its operations holds it, and the
operation that captures, voids or refunds it there."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from paymentorch.domain import (
    InvalidTransition,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    uuid7,
)
from paymentorch.domain.actions import IN_FLIGHT
from paymentorch.domain.orchestration import original_of

from .context import Context


async def held(ctx: Context, payment: Payment, action: str) -> Operation | None:
    """The processor's charge or authorization that a follow-up of ``payment`` must go
    through, or None (no processor, or the money was moved by hand).

    Raises:
        InvalidTransition: a capture or void is already under way (for anything but a
            refund).
    """
    if ctx.processor is None:
        return None
    operations = await ctx.store.operations(payment.id)
    found = original_of(operations)
    if found is not None and action != "refund":
        for op in operations:
            if op.kind in (OperationKind.CAPTURE, OperationKind.CANCEL) and op.status in IN_FLIGHT:
                under_way = f"a {op.kind.value} is under way ({op.id})"
                raise InvalidTransition(payment.id, payment.status, action, under_way)
    return found


def follow_up(
    original: Operation, kind: OperationKind, amount: Decimal, reason: str | None, now: datetime
) -> Operation:
    """A pending ``kind`` of ``amount``, pinned to the processor that holds ``original``."""
    return Operation(
        id=uuid7(),
        payment_id=original.payment_id,
        kind=kind,
        amount=amount,
        currency=original.currency,
        status=OperationStatus.PENDING,
        created_at=now,
        updated_at=now,
        processor=original.processor,
        reason=reason,
        due_at=now,
    )
