"""What a change leaves behind: the audit entry and the event, written with it atomically."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs

from paymentorch.domain.actions import action
from paymentorch.domain.ids import uuid7
from paymentorch.domain.ledger import JournalEntry
from paymentorch.domain.operations import Operation, OperationKind
from paymentorch.domain.payment import Payment, PaymentStatus
from paymentorch.domain.plans import Plan
from paymentorch.domain.requests import RequestKey


class PaymentSnapshot(Mapping[str, Any]):
    """A payment's ``to_dict()``, worked out when first read.

    An event carries its payment's state after the change; many events are relayed
    without their snapshot ever being read in this process, so it is not built until then.
    """

    __slots__ = ("_data", "_extra", "_payment")

    def __init__(self, payment: Payment, extra: Mapping[str, Any] | None = None) -> None:
        self._payment = payment
        self._extra = extra
        self._data: dict[str, Any] | None = None

    def _dict(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._payment.to_dict()
            if self._extra:
                self._data.update(self._extra)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of it (what ``dict(snapshot)`` gives, without a lookup a key)."""
        return self._dict().copy()

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return repr(self._dict())


@attrs.frozen
class AuditEntry:
    """One change to one payment; never updated or deleted.

    Attributes:
        payment_id: The payment that changed.
        action: ``created``, ``authorized``, ``confirmed``, ``captured``, ``failed``,
            ``cancelled`` or ``refunded``; with a processor also ``capture_queued``,
            ``cancel_queued``, ``refund_queued`` (an operation queued) and
            ``capture_declined``, ``cancel_declined``, ``refund_declined``.
        from_status: The status before (None on creation).
        to_status: The status after.
        actor_id: Who made the change.
        at: When (UTC).
        reason: The reason given, if any.
        correlation_id: The request that made it, if known.
    """

    payment_id: UUID
    action: str
    from_status: PaymentStatus | None
    to_status: PaymentStatus
    actor_id: str
    at: datetime
    reason: str | None = None
    correlation_id: str | None = None


@attrs.frozen
class PaymentEvent:
    """A committed change, as consumers receive it.

    Attributes:
        id: Unique; consumers de-duplicate by it (delivery is at least once).
        type: ``payment.created``, ``payment.authorized``, ``payment.confirmed``,
            ``payment.failed``, ``payment.cancelled``, ``payment.refunded``; with a
            processor also ``payment.<action>`` for the six actions a processor adds.
        payment_id: The payment it is about.
        occurred_at: When the change happened (UTC).
        payment: The payment's ``to_dict()`` snapshot after the change.
        actor_id: Who made the change.
        correlation_id: The request that made it, if known.
        operation: The money movement's ``to_dict()``, when one is involved (a refund,
            or any operation queued or settled through a processor).
    """

    id: UUID
    type: str
    payment_id: UUID
    occurred_at: datetime
    payment: Mapping[str, Any]
    actor_id: str
    correlation_id: str | None = None
    operation: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values, as sinks usually want them."""
        return {
            "id": str(self.id),
            "type": self.type,
            "payment_id": str(self.payment_id),
            "occurred_at": self.occurred_at.isoformat(),
            "payment": dict(self.payment),
            "actor_id": self.actor_id,
            "correlation_id": self.correlation_id,
            "operation": None if self.operation is None else dict(self.operation),
        }


@attrs.frozen
class Change:
    """A payment's new state with what must commit with it: the audit entry, the event,
    the money movement, if one is involved, and what it does to the customer's credit.

    Attributes:
        plan: The payment's installment plan as it is after the change, when it has one
            and the change touches it (written with the payment: inserted at creation,
            updated after).
        exposure: How much the customer's exposure moves (in the payment's currency);
            0 when no credit policy applies.
        credit_limit: The customer's limit, which a store must not let an exposure that
            grows pass (atomically with the write); None when it does not grow.
        more_events: Events that follow ``event`` in the outbox (a plan's), written with it.
        request: The transition's idempotency key, claimed with the change (scoped by
            ``audit.actor_id``); the store keeps ``payment`` as the answer to a repeat.
        action: The action of the table (``paymentorch.domain.actions``) it records.
        journal: The journal entry of the money it moves, if it moves any.
    """

    payment: Payment
    audit: AuditEntry
    event: PaymentEvent
    operation: Operation | None = None
    plan: Plan | None = None
    exposure: Decimal = Decimal(0)
    credit_limit: Decimal | None = None
    more_events: tuple[PaymentEvent, ...] = ()
    request: RequestKey | None = None
    action: str = ""
    journal: JournalEntry | None = None

    @property
    def guard(self) -> Guard:
        """What must still hold when the store writes it."""
        op = self.operation
        room = op.amount if op is not None and op.kind is OperationKind.REFUND else Decimal(0)
        return Guard(
            status=self.audit.from_status,
            version=self.payment.version - 1,
            refund_room=room,
            credit_limit=self.growth_limit,
        )

    @property
    def growth_limit(self) -> Decimal | None:
        """The limit its exposure must stay within (``guard.credit_limit``): None when the
        exposure does not grow, or no limit applies."""
        return self.credit_limit if self.exposure > 0 else None


@attrs.frozen
class Guard:
    """What a store checks atomically with a change's write (never by reading first):
    the payment still has the status and version the change was decided on, a refund
    still finds room for itself under what was captured (refunded and pending refunds
    plus ``refund_room`` at most the captured amount), and a growing exposure stays
    within the customer's ``credit_limit``. Each store turns it into its condition once.

    Attributes:
        status: The status the payment must have (None for a creation).
        version: The version it must have.
        refund_room: The refund the write reserves or records (0 for other changes).
        credit_limit: The limit a growing exposure must stay within (None: no limit).
    """

    status: PaymentStatus | None
    version: int
    refund_room: Decimal = Decimal(0)
    credit_limit: Decimal | None = None


def record_change(
    payment: Payment,
    kind: str,
    *,
    from_status: PaymentStatus | None,
    actor_id: str,
    reason: str | None = None,
    correlation_id: str | None = None,
    operation: Operation | None = None,
    event_id: UUID | None = None,
) -> Change:
    """Build the audit entry and event for ``payment`` after ``kind`` (an action of the
    table in ``paymentorch.domain.actions``, ``created`` for a creation); the event's id
    is ``event_id``, or a new one."""
    found = action(kind)
    at = payment.updated_at
    return Change(
        payment,
        AuditEntry(
            payment_id=payment.id,
            action=found.audit,
            from_status=from_status,
            to_status=payment.status,
            actor_id=actor_id,
            at=at,
            reason=reason,
            correlation_id=correlation_id,
        ),
        PaymentEvent(
            id=uuid7() if event_id is None else event_id,
            type=found.event,
            payment_id=payment.id,
            occurred_at=at,
            payment=PaymentSnapshot(payment),
            actor_id=actor_id,
            correlation_id=correlation_id,
            operation=None if operation is None else operation.to_dict(),
        ),
        operation,
        action=kind,
    )


def with_plan(
    change: Change,
    plan: Plan,
    events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    details: Mapping[str, Any] | None = None,
) -> Change:
    """``change`` carrying the payment's plan as it is after it, and plan events: each
    a type (``plan.activated``...) and what it adds to the payload, which is the payment's
    snapshot with the plan's ``to_dict()`` under ``plan``. A change whose own event is a
    plan event (``plan.installment_paid``...) carries the plan, and ``details``, in its
    payload too."""
    event, payment = change.event, change.payment
    if event.type.startswith("plan."):
        extra = {"plan": plan.to_dict(), **(details or {})}
        event = attrs.evolve(event, payment=PaymentSnapshot(payment, extra))
    more = tuple(
        PaymentEvent(
            id=uuid7(),
            type=kind,
            payment_id=payment.id,
            occurred_at=event.occurred_at,
            payment=PaymentSnapshot(payment, {"plan": plan.to_dict(), **details}),
            actor_id=event.actor_id,
            correlation_id=event.correlation_id,
        )
        for kind, details in events
    )
    return attrs.evolve(change, event=event, plan=plan, more_events=change.more_events + more)


def check_bulk(changes: Sequence[Change]) -> None:
    """Refuse what ``apply_many`` does not write: a change with an operation (a refund, a
    queued capture), a transition's key or a refund's room. A bulk write is transitions
    of many payments, each with its audit entry, event, plan and journal entry.

    Raises:
        ValueError: naming the first such change.
    """
    for change in changes:
        if change.operation is not None or change.request is not None or change.guard.refund_room:
            raise ValueError(
                f"apply_many does not write operations, keys or refunds: the"
                f" {change.action} of payment {change.payment.id} has one"
            )
