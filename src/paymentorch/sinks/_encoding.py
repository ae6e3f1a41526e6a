"""What every broker sink shares: the message body and the per-payment ordering."""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

from paymentorch.domain import PaymentEvent


def encode_event(event: PaymentEvent) -> bytes:
    """The event as compact UTF-8 JSON: ``PaymentEvent.to_dict()``."""
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


def group_by_payment(events: Sequence[PaymentEvent]) -> list[list[PaymentEvent]]:
    """The batch split by payment, each payment's events in the batch's order.

    A sink publishes each group in order, waiting for each acknowledgement, and the groups
    side by side: a payment's events cannot overtake one another, and a batch of many
    payments does not wait for one round trip per event.
    """
    groups: dict[UUID, list[PaymentEvent]] = {}
    for event in events:
        groups.setdefault(event.payment_id, []).append(event)
    return list(groups.values())
