"""A process-local TTL cache of payments, on cachetools."""

from __future__ import annotations

import threading
from uuid import UUID

import cachetools

from paymentorch.domain import Payment


class LocalCache:
    """Payments by id in this process, for ``ttl`` seconds, at most ``maxsize`` of them.

    ``set`` never replaces a newer version with an older one, so a slow reader that
    fetched a payment before a change cannot put the old state back.
    """

    def __init__(self, *, maxsize: int = 10_000, ttl: float = 60.0) -> None:
        self._entries: cachetools.TTLCache[UUID, Payment] = cachetools.TTLCache(maxsize, ttl)
        self._lock = threading.Lock()

    async def get(self, payment_id: UUID) -> Payment | None:
        """The cached payment, or None."""
        with self._lock:
            return self._entries.get(payment_id)

    async def set(self, payment: Payment) -> None:
        """Keep ``payment`` unless a newer version is cached."""
        with self._lock:
            current = self._entries.get(payment.id)
            if current is None or current.version <= payment.version:
                self._entries[payment.id] = payment

    async def delete(self, payment_id: UUID) -> None:
        """Forget the payment."""
        with self._lock:
            self._entries.pop(payment_id, None)

    def __len__(self) -> int:
        return len(self._entries)
