"""The in-memory store's outbox: each change's events wait in commit order until a relay
delivers them; a failed one is retried, then parked."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import attrs

from paymentorch.domain import PaymentEvent, StoreUnavailable
from paymentorch.ports import OutboxMessage, OutboxStats


@attrs.define
class OutboxRow:
    """An event waiting in the outbox, with its place in commit order and its attempts."""

    seq: int
    event: PaymentEvent
    attempts: int = 0
    last_error: str | None = None
    retry_at: datetime | None = None
    lease_until: datetime | None = None

    @property
    def message(self) -> OutboxMessage:
        """The event as a relay receives it."""
        # Made when read, not kept: an object fewer per waiting event for the collector.
        return OutboxMessage(self.event, self.attempts, self.last_error)


class MemoryOutbox:
    """The outbox of ``InMemoryPaymentStore``, with the lock and the open flag that every
    call of the store takes. The store adds a row to ``_pending`` for each event of a
    change it writes, under the same lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._pending: dict[UUID, OutboxRow] = {}  # insertion order is event order
        self._parked: dict[UUID, OutboxRow] = {}
        # Delivered events are gone, as from the SQL outbox; their ids stay for the
        # integrity check (one set: a set a payment would cost 200 bytes each).
        self._delivered: set[UUID] = set()
        self._seq = itertools.count(1)

    def _open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the in-memory store is closed")

    def _enqueue(self, event: PaymentEvent) -> None:
        """Add ``event`` behind every event before it (the caller holds the lock)."""
        self._pending[event.id] = OutboxRow(next(self._seq), event)

    def _waiting_events(self, payment_ids: set[UUID]) -> dict[UUID, set[UUID]]:
        """The events of ``payment_ids`` still waiting or parked, by payment (the caller
        holds the lock)."""
        found: dict[UUID, set[UUID]] = {}
        for rows in (self._pending, self._parked):
            for event_id, row in rows.items():
                payment_id = row.event.payment_id
                if payment_id in payment_ids:
                    found.setdefault(payment_id, set()).add(event_id)
        return found

    async def claim_events(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[OutboxMessage]:
        """Lease up to ``limit`` due events, oldest first, keeping each payment's order."""
        claimed: list[OutboxMessage] = []
        with self._lock:
            self._open()
            blocked: set[UUID] = set()
            for row in self._pending.values():
                payment_id = row.event.payment_id
                if payment_id in blocked:
                    continue
                blocked.add(payment_id)  # later events of this payment wait for this one
                if (row.retry_at is not None and row.retry_at > now) or (
                    row.lease_until is not None and row.lease_until > now
                ):
                    continue
                row.lease_until = lease_until
                claimed.append(row.message)
                if len(claimed) == limit:
                    break
        return claimed

    async def mark_delivered(self, event_ids: Sequence[UUID]) -> None:
        """Drop delivered events."""
        with self._lock:
            self._open()
            for event_id in event_ids:
                if self._pending.pop(event_id, None) is not None:
                    self._delivered.add(event_id)

    async def mark_failed(
        self, event_ids: Sequence[UUID], *, error: str, retry_at: datetime | None
    ) -> None:
        """Count a failed attempt; schedule a retry or park."""
        with self._lock:
            self._open()
            for event_id in event_ids:
                row = self._pending.get(event_id)
                if row is None:
                    continue
                row.attempts += 1
                row.last_error = error[:1000]
                row.lease_until = None
                row.retry_at = retry_at
                if retry_at is None:
                    self._parked[event_id] = self._pending.pop(event_id)

    async def outbox_stats(self) -> OutboxStats:
        """Pending and parked counts, and when the oldest pending event occurred."""
        with self._lock:
            self._open()
            first = next(iter(self._pending.values()), None)
            return OutboxStats(
                pending=len(self._pending),
                oldest_pending_at=None if first is None else first.event.occurred_at,
                parked=len(self._parked),
            )

    async def parked_events(self, limit: int = 100) -> list[OutboxMessage]:
        """Parked events, oldest first."""
        with self._lock:
            self._open()
            rows = sorted(self._parked.values(), key=lambda r: r.seq)[:limit]
            return [r.message for r in rows]

    async def requeue_parked(self, event_ids: Sequence[UUID] | None = None) -> int:
        """Make parked events pending again, in their original order."""
        with self._lock:
            self._open()
            chosen = (
                list(self._parked)
                if event_ids is None
                else [i for i in event_ids if i in self._parked]
            )
            for event_id in chosen:
                row = self._parked.pop(event_id)
                row.attempts = 0
                row.retry_at = None
                self._pending[event_id] = row
            if chosen:
                self._pending = dict(sorted(self._pending.items(), key=lambda kv: kv[1].seq))
            return len(chosen)
