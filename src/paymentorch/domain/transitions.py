"""A status transition a store decides on the payment as it finds it: one step, no read
first.

The commit pipeline reads a payment, decides its change and writes it under a guard: two
round trips at least. A plain status transition (one that carries no amount, of a
payment without a plan) depends on nothing the service must look up, so the service
hands the store a ``Transition`` instead, and the store writes in one step, if the
payment's status is one the transition starts from, exactly the change the pipeline
would have decided (``Transition.change``). When nothing matched, the store may say
what it found (``Stepped``): the service decides on that, and reads only what the store
did not say.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Final
from uuid import UUID

import attrs

from paymentorch.domain.actions import action
from paymentorch.domain.consequences import booked, with_exposure
from paymentorch.domain.credit import OWED
from paymentorch.domain.ids import uuid7
from paymentorch.domain.payment import Payment, PaymentStatus, transition
from paymentorch.domain.plans import Plan
from paymentorch.domain.records import Change, record_change

ONE_STEP: Final = frozenset({"authorize", "confirm", "fail", "cancel"})
"""The actions a store may decide itself: status transitions that carry no amount and,
from the statuses they start from (all owed), never grow an exposure, so no credit limit
needs checking."""


@functools.cache  # asked on every one step, of a few names
def transition_sources(name: str) -> frozenset[PaymentStatus]:
    """The statuses ``name`` (one of ``ONE_STEP``) may start from in one step: all of its
    own, which are owed."""
    return action(name).sources & OWED


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

    def __attrs_post_init__(self) -> None:
        _sources(self.sources, self.action)

    def applies_to(self, payment: Payment) -> bool:
        """Whether the store writes it on ``payment`` as found: a status it starts from,
        and no plan."""
        return payment.status in self.sources and not payment.has_plan

    def change(self, payment: Payment) -> Change:
        """The change it makes to ``payment`` (which it ``applies_to``): the one the commit
        pipeline decides, with its audit entry, event, exposure move and journal entry."""
        new = transition(payment, self.action, at=self.at, reason=self.reason)
        change = record_change(
            new,
            self.action,
            from_status=payment.status,
            actor_id=self.actor_id,
            reason=self.reason,
            correlation_id=self.correlation_id,
            event_id=self.event_id,
        )
        return booked(with_exposure(change, payment), payment, entry_id=self.entry_id)


@attrs.frozen
class Stepped:
    """What a store's one step came to (``PaymentStore.transition``).

    Attributes:
        written: The payment after the transition, when the store wrote it.
        found: When it wrote nothing, the payment as the store found it (None: missing,
            or the store does not say); the service decides on it as on a fresh read.
        plan: The found payment's plan, when it has one and the store read it with the
            payment (None: the service reads it).
    """

    written: Payment | None = None
    found: Payment | None = None
    plan: Plan | None = None
