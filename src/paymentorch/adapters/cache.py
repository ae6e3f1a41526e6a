"""A process-local cache of payments: a least-recently-used map with a time to live."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from uuid import UUID

from paymentorch.domain import Payment


class LocalCache:
    """Payments by id in this process, for ``ttl`` seconds, at most ``maxsize`` of them.

    ``set`` never replaces a newer version with an older one, so a slow reader that
    fetched a payment before a change cannot put the old state back.
    """

    def __init__(self, *, maxsize: int = 10_000, ttl: float = 60.0) -> None:
        # An OrderedDict in recency order, each entry (expiry, payment), expiry checked on
        # read: every step is one C-level dict operation, where cachetools' LRU spent more
        # time than the in-memory store it sat in front of.
        self._entries: OrderedDict[UUID, tuple[float, Payment]] = OrderedDict()
        self._maxsize = maxsize
        self._ttl = ttl
        self._lock = threading.Lock()

    async def get(self, payment_id: UUID) -> Payment | None:
        """The cached payment, or None (also once its time is up)."""
        with self._lock:
            entry = self._entries.get(payment_id)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[payment_id]
                return None
            self._entries.move_to_end(payment_id)
            return entry[1]

    async def set(self, payment: Payment) -> None:
        """Keep ``payment`` unless a newer version is cached."""
        entries = self._entries
        with self._lock:
            now = time.monotonic()
            current = entries.get(payment.id)
            if current is None:
                entries[payment.id] = (now + self._ttl, payment)
                if len(entries) > self._maxsize:
                    entries.popitem(last=False)
            elif current[0] <= now or current[1].version <= payment.version:
                entries[payment.id] = (now + self._ttl, payment)
                entries.move_to_end(payment.id)

    async def delete(self, payment_id: UUID) -> None:
        """Forget the payment."""
        with self._lock:
            self._entries.pop(payment_id, None)

    def __len__(self) -> int:
        return len(self._entries)
