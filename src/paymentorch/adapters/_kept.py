"""Payments a SQL store keeps as it wrote them, for the first transition of each: a
checkout's confirmation then decides without reading first."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Final, Generic, TypeVar
from uuid import UUID

from paymentorch.domain import Payment

T = TypeVar("T")

FRESH_FOR: Final = timedelta(hours=1)
"""How long after its creation (by the service's clock) a payment a store keeps as it
wrote it serves its first transition. A payment's own changes move its version, which
guards the write decided on it; the one change that does not, a purge of its idempotency
key, releases only keys a day old (``KEY_RETENTION``), and the store's own purge forgets
them all."""


class KeptAsWritten(Generic[T]):
    """The newest ``size`` payments a store created, each with what it wrote along
    (``T``: its plan, say), until their first transition takes them.

    Safe from the blocking twin's threads: a dict's ``pop`` and ``popitem`` are atomic.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._kept: OrderedDict[UUID, tuple[Payment, T]] = OrderedDict()

    def keep(self, payment: Payment, written: T) -> None:
        """Keep ``payment`` as written, dropping the oldest beyond the size."""
        self._kept[payment.id] = (payment, written)
        if len(self._kept) > self._size:
            self._kept.popitem(last=False)

    def take(self, payment_id: UUID, at: datetime) -> tuple[Payment, T] | None:
        """The payment as written and what came with it, once, if it was created less
        than ``FRESH_FOR`` before ``at``; else None (read it)."""
        kept = self._kept.pop(payment_id, None)
        if kept is None or at - kept[0].created_at >= FRESH_FOR:
            return None
        return kept

    def get(self, payment_id: UUID) -> tuple[Payment, T] | None:
        """What is kept of the payment, leaving it kept."""
        return self._kept.get(payment_id)

    def forget(self) -> None:
        """Keep nothing (idempotency keys were purged: some kept may be released)."""
        self._kept.clear()
