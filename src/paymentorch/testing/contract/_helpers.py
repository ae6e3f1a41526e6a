"""What the role test classes share: actors, a customer, and changes built as the
service would build them, to call a store directly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from paymentorch.clock import utc_now
from paymentorch.domain import (
    Actor,
    Change,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentEvent,
    PaymentStatus,
    Role,
    record_change,
    refund,
    transition,
    uuid7,
)
from paymentorch.ports import PaymentStore
from paymentorch.testing._backend import Backend
from paymentorch.testing.simulated import SimulatedProcessor

USER = Actor("user-1", roles={Role.USER})
ADMIN = Actor("admin-1", roles={Role.ADMIN})
CUSTOMER = "ABCD-12345"


async def _events(store: PaymentStore) -> list[Any]:
    """Every pending event, in outbox order, delivered and removed on the way."""
    now = utc_now()
    events: list[PaymentEvent] = []
    while True:
        batch = await store.claim_events(1000, now=now, lease_until=now + timedelta(minutes=1))
        if not batch:
            return events
        events += [m.event for m in batch]
        await store.mark_delivered([m.event.id for m in batch])


def _simulated(**options: Any) -> SimulatedProcessor:
    return SimulatedProcessor(**{"latency": (0, 0), "seed": 11, "success_rate": 1.0, **options})


async def _unsettled(store: PaymentStore) -> bool:
    for status in (OperationStatus.PENDING, OperationStatus.UNKNOWN):
        if await store.operations_with_status(status, limit=1):
            return True
    return False


def _shared(backend: Backend) -> None:
    if not backend.shared:
        pytest.skip(f"{backend.name} cannot be opened by several processes (Backend.shared)")


async def _close(store: PaymentStore) -> None:
    await store.aclose()


async def _peek(store: PaymentStore) -> list[Any]:
    """Pending events without delivering them (the lease lapses at once)."""
    now = utc_now()
    messages = await store.claim_events(1000, now=now, lease_until=now)
    return [m.event for m in messages]


def _created(*, key: str | None = None, actor_id: str = "user-1") -> Change:
    """A new Pending payment's change, as the service would hand it to ``add``."""
    now = utc_now()
    payment = Payment(
        id=uuid7(),
        customer_id=CUSTOMER,
        amount=Decimal("1.00"),
        currency="USD",
        status=PaymentStatus.PENDING,
        created_at=now,
        updated_at=now,
        version=1,
        idempotency_key=key,
    )
    return record_change(payment, "created", from_status=None, actor_id=actor_id)


def _changed(payment: Any, action: str) -> Change:
    """``action`` applied to ``payment``, as the service would hand it to ``apply``."""
    new = transition(payment, action, at=utc_now())
    return record_change(new, action, from_status=payment.status, actor_id="admin-1")


def _refunded(payment: Any, amount: str) -> Change:
    """A refund of ``amount`` on ``payment`` (its store copy may hold less than it says)."""
    now = utc_now()
    new = refund(payment, Decimal(amount), at=now)
    operation = Operation(
        id=uuid7(),
        payment_id=payment.id,
        kind=OperationKind.REFUND,
        amount=Decimal(amount),
        currency=payment.currency,
        status=OperationStatus.SUCCEEDED,
        created_at=now,
        updated_at=now,
    )
    return record_change(
        new, "refund", from_status=payment.status, actor_id="admin-1", operation=operation
    )


def _creation_reusing_event(template: Any, event_id: Any) -> Change:
    now = utc_now()
    payment = attrs.evolve(template, id=uuid7(), created_at=now, updated_at=now)
    change = record_change(payment, "created", from_status=None, actor_id="x")
    return attrs.evolve(change, event=attrs.evolve(change.event, id=event_id))
