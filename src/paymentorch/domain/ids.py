"""Time-ordered payment and event ids (UUID version 7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID

_COUNTER_BITS = 42  # 12 bits in rand_a, 30 in rand_b: ids from one process stay in order
_POOL_SIZE = 4096


class _Generator:
    """Monotonic UUIDv7s with random bits from the OS, read in blocks to save system calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0
        self._pool = b""
        self._offset = 0

    def _random(self, size: int) -> int:
        if self._offset + size > len(self._pool):
            self._pool, self._offset = os.urandom(_POOL_SIZE), 0
        start = self._offset
        self._offset += size
        return int.from_bytes(self._pool[start : self._offset])

    def __call__(self) -> UUID:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms = ms
                self._counter = self._random(5) >> 1  # 39 random bits leave room to count
            else:
                # Same (or a stepped-back) millisecond: count up so ids stay monotonic.
                self._counter += 1
                if self._counter >= 1 << _COUNTER_BITS:
                    self._ms += 1
                    self._counter = self._random(5) >> 1
            ms, counter, rand = self._ms, self._counter, self._random(4)
        return UUID(
            int=(ms & 0xFFFF_FFFF_FFFF) << 80
            | 0x7 << 76
            | (counter >> 30) << 64
            | 0b10 << 62
            | (counter & 0x3FFF_FFFF) << 32
            | rand
        )

    def forget(self) -> None:
        """Drop the buffered random bits (a forked child must not reuse its parent's)."""
        self._lock = threading.Lock()
        self._pool, self._offset, self._ms = b"", 0, 0


uuid7 = _Generator()
"""Return a UUIDv7 that sorts after every one made before it in this process."""

os.register_at_fork(after_in_child=uuid7.forget)
