"""The relay that delivers committed events from a store's outbox to a sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from paymentorch.clock import utc_now
from paymentorch.domain import PaymentError
from paymentorch.ports import EventSink, Outbox

logger = logging.getLogger("paymentorch.outbox")


class OutboxRelay:
    """Delivers events at least once, each payment's events in the order they happened.

    A batch goes to the sink in one call. If the sink raises, the batch stays pending:
    each event's attempt count grows and it is retried after an exponential back-off;
    after ``max_attempts`` it is parked (see ``Outbox.parked_events``), never dropped.
    Events are leased while delivered, so several relays, in one process or many,
    share the work without delivering one event at the same time.
    """

    def __init__(
        self,
        store: Outbox,
        sink: EventSink,
        *,
        batch_size: int = 100,
        max_attempts: int = 10,
        lease: timedelta = timedelta(seconds=30),
        backoff: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(minutes=5),
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if batch_size < 1 or max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be at least 1")
        self.store = store
        self.sink = sink
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.lease = lease
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self._clock = clock

    def retry_delay(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed delivery."""
        # Doubling in float seconds: a timedelta would overflow after about 48 doublings.
        exponent = min(max(0, attempts - 1), 1000)
        seconds = self.backoff.total_seconds() * 2.0**exponent
        return min(self.max_backoff, timedelta(seconds=min(seconds, 1e9)))

    async def run_once(self) -> int:
        """Deliver one batch of due events; return how many were delivered."""
        now = self._clock()
        messages = await self.store.claim_events(
            self.batch_size, now=now, lease_until=now + self.lease
        )
        if not messages:
            return 0
        events = [m.event for m in messages]
        try:
            await self.sink(events)
        except Exception as exc:  # any sink failure leaves the events for a retry
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("event sink failed for %d event(s): %s", len(events), error)
            by_retry: dict[datetime | None, list[UUID]] = {}
            for message in messages:
                attempts = message.attempts + 1
                retry_at = (
                    None
                    if attempts >= self.max_attempts
                    else self._clock() + self.retry_delay(attempts)
                )
                by_retry.setdefault(retry_at, []).append(message.event.id)
            for retry_at, ids in by_retry.items():
                await self.store.mark_failed(ids, error=error, retry_at=retry_at)
            return 0
        await self.store.mark_delivered([e.id for e in events])
        return len(events)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set, waiting ``poll_interval`` whenever nothing is due."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                delivered = await self.run_once()
            except PaymentError:
                logger.exception("outbox relay could not reach the store; retrying")
                delivered = 0
            if delivered < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)
