"""The examples' event sink."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import paymentorch as po

logger = logging.getLogger("examples.events")


async def log_events(events: Sequence[po.PaymentEvent]) -> None:
    """One log line per event, without personal data."""
    for event in events:
        logger.info("event %s %s payment=%s", event.type, event.id, event.payment_id)
