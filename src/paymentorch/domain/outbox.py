"""Events as the outbox holds them: with their delivery attempts."""

from __future__ import annotations

from datetime import datetime

import attrs

from paymentorch.domain.records import PaymentEvent


@attrs.frozen
class OutboxMessage:
    """An event waiting in (or claimed from) the outbox.

    Attributes:
        event: The event.
        attempts: Deliveries tried and failed so far.
        last_error: Why the last attempt failed.
    """

    event: PaymentEvent
    attempts: int = 0
    last_error: str | None = None


@attrs.frozen
class OutboxStats:
    """The outbox at a glance.

    Attributes:
        pending: Events not yet delivered (parked ones excluded).
        oldest_pending_at: When the oldest pending event occurred.
        parked: Events that used up their attempts and wait for a re-queue.
    """

    pending: int
    oldest_pending_at: datetime | None
    parked: int
