"""A status transition a store decides on the payment as it finds it: one step, no read
first.

The commit pipeline reads a payment, decides its change and writes it under a guard: two
round trips at least. A plain status transition of a payment without a plan (a capture,
or a refund completed here, with its amount bounded by the payment's) depends on nothing
the service must look up, so the service hands the store a ``Transition`` instead, and
the store writes in one step, if the payment's status is one the transition starts from,
exactly the change the pipeline would have decided (``Transition.change``). When
nothing matched, the store may say what it found (``Stepped``): the service decides on
that, and reads only what the store did not say.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Final
from uuid import UUID

import attrs

from paymentorch.domain.actions import action
from paymentorch.domain.consequences import with_consequences
from paymentorch.domain.credit import OWED
from paymentorch.domain.ids import uuid7
from paymentorch.domain.money import at_scale, currency_exponent, decimal_places
from paymentorch.domain.operations import Operation, OperationKind, OperationStatus
from paymentorch.domain.payment import Payment, PaymentStatus, refund, transition
from paymentorch.domain.plans import Plan
from paymentorch.domain.records import Change, record_change
from paymentorch.domain.requests import request_key

ONE_STEP: Final = frozenset({"authorize", "capture", "confirm", "fail", "cancel", "refund"})
"""The actions a store may decide itself: changes that, from the statuses they start from
(owed ones; a refund's, Confirmed, owes nothing), never grow an exposure, so no credit
limit needs checking (a capture's or refund's amount is bounded by the payment's)."""


@functools.cache  # asked on every one step, of a few names
def transition_sources(name: str) -> frozenset[PaymentStatus]:
    """The statuses ``name`` (one of ``ONE_STEP``) may start from in one step: all of its
    own that are owed (a refund: Confirmed)."""
    own = action(name).sources
    return own if name == "refund" else own & OWED


def _sources(value: frozenset[PaymentStatus], name: str) -> None:
    if name not in ONE_STEP:
        raise ValueError(f"{name} is not decided in one step (ONE_STEP)")
    allowed = transition_sources(name)
    if not value or not value <= allowed:
        raise ValueError(f"{name} starts from some of {sorted(allowed)}, not {sorted(value)}")


@attrs.frozen
class Transition:
    """A status transition of one payment, for the store to decide and write at once.

    Attributes:
        payment_id: The payment.
        action: One of ``ONE_STEP``.
        sources: The statuses it may start from here: some of the action's own (the
            service leaves out those that take the longer way, such as an Authorized
            payment whose money a processor holds).
        at: When (the service clock's time).
        actor_id: Who asks.
        reason: The reason given (required to fail, checked by the service).
        correlation_id: The request that asks, if known.
        event_id: The outbox event's id.
        entry_id: The journal entry's id, if the transition moves money.
        amount: What a capture takes (None: the whole amount) or a refund gives back
            (None: what is left to refund), as asked: it applies only when more than
            zero, within the payment's amount (a refund: what is left to refund) and
            exact in its currency.
        operation_id: A refund's operation's id (required for a refund).
        key: The idempotency key it claims with the payment after it, in the actor's
            scope (not for a refund, whose key is its operation's): the store writes
            nothing when the key is held, and raises ``IdempotencyConflict``.
    """

    payment_id: UUID
    action: str
    sources: frozenset[PaymentStatus]
    at: datetime
    actor_id: str
    reason: str | None = None
    correlation_id: str | None = None
    event_id: UUID = attrs.field(factory=uuid7)
    entry_id: UUID = attrs.field(factory=uuid7)
    amount: Decimal | None = None
    operation_id: UUID | None = None
    key: str | None = None

    def __attrs_post_init__(self) -> None:
        _sources(self.sources, self.action)
        refunds = self.action == "refund"
        if self.amount is not None and (
            self.action not in {"capture", "refund"} or not self.amount.is_finite()
        ):
            raise ValueError("only a capture or refund takes an amount, and a finite one")
        if refunds and (self.operation_id is None or self.key is not None):
            raise ValueError("a refund takes its operation's id, and no key")

    def applies_to(self, payment: Payment) -> bool:
        """Whether the store writes it on ``payment`` as found: a status it starts from,
        no plan, and an amount the payment can take."""
        if payment.status not in self.sources or payment.has_plan:
            return False
        taken, refunds = self.amount, self.action == "refund"
        room = payment.refundable if refunds else payment.amount
        if taken is None:  # the whole amount, or what is left to refund
            return not refunds or room > 0
        return 0 < taken <= room and decimal_places(taken) <= (
            currency_exponent(payment.currency) or 0
        )

    def taken(self, payment: Payment) -> Decimal | None:
        """What it takes or gives back of ``payment`` as found, at its currency's scale
        (None: a whole capture)."""
        if self.amount is not None:
            return at_scale(self.amount, payment.currency)
        if self.action == "refund":  # what is left
            return at_scale(payment.refundable, payment.currency)
        return None

    def refund_of(self, payment: Payment, amount: Decimal | None = None) -> Operation:
        """The refund it records on ``payment`` as found, completed here (a refund only),
        of ``amount`` when given (what a store says it gave back)."""
        taken = self.taken(payment) if amount is None else amount
        key = self.operation_id
        if taken is None or key is None:
            raise ValueError("not a refund")
        return Operation(
            id=key, payment_id=payment.id, kind=OperationKind.REFUND, amount=taken,
            currency=payment.currency, status=OperationStatus.SUCCEEDED, created_at=self.at,
            updated_at=self.at, reason=self.reason,
        )  # fmt: skip

    def change(self, payment: Payment) -> Change:
        """The change it makes to ``payment`` (which it ``applies_to``): the one the commit
        pipeline decides, with its audit entry, event, exposure move and journal entry."""
        operation = None
        if self.action == "refund":
            operation = self.refund_of(payment)
            new = refund(payment, operation.amount, at=self.at)
        else:
            taken = self.taken(payment)
            new = transition(payment, self.action, at=self.at, reason=self.reason, amount=taken)
        change = record_change(
            new,
            self.action,
            from_status=payment.status,
            actor_id=self.actor_id,
            reason=self.reason,
            correlation_id=self.correlation_id,
            operation=operation,
            event_id=self.event_id,
        )
        change = with_consequences(change, payment, entry_id=self.entry_id)
        if self.key is None:
            return change
        taken = new.captured_amount if self.action == "capture" else None
        request = request_key(self.key, self.action, amount=taken, reason=self.reason)
        return attrs.evolve(change, request=request)


@attrs.frozen
class Stepped:
    """What a store's one step came to (``PaymentStore.transition``).

    Attributes:
        written: The payment after the transition, when the store wrote it.
        found: When it wrote nothing, the payment as the store found it (None: missing,
            or the store does not say); the service decides on it as on a fresh read.
        plan: The found payment's plan, when it has one and the store read it with the
            payment (None: the service reads it).
        operation: The refund it completed, when it wrote one (for a refund of what is
            left, what it gave back).
    """

    written: Payment | None = None
    found: Payment | None = None
    plan: Plan | None = None
    operation: Operation | None = None
