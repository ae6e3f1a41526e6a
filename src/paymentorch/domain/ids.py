"""Time-ordered payment and event ids (UUID version 7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID, SafeUUID

_COUNTER_BITS = 42  # 12 bits in rand_a, 30 in rand_b: ids from one process stay in order
_POOL_SIZE = 9 * 512  # random bits for 512 ids per system call
_VERSION_AND_VARIANT = 0x7 << 76 | 0b10 << 62
# Bound once: looking each up per id (an enum member's above all) cost more than the id.
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = SafeUUID.unknown


class _Generator:
    """Monotonic UUIDv7s with random bits from the OS, read in blocks to save system calls."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop the buffered random bits (a forked child must not reuse its parent's)."""
        self._lock = threading.Lock()
        self._pool = b""
        self._offset = _POOL_SIZE
        self._ms = 0
        self._counter = 0

    def __call__(self) -> UUID:
        with self._lock:
            start = self._offset
            if start == _POOL_SIZE:
                self._pool, start = os.urandom(_POOL_SIZE), 0
            self._offset = start + 9
            bits = int.from_bytes(self._pool[start : start + 9])  # 72 random bits
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms = ms
                counter = self._counter = bits >> 33  # 39 bits leave room to count up
            else:
                # Same (or a stepped-back) millisecond: count up so ids stay monotonic.
                counter = self._counter = self._counter + 1
                if counter >= 1 << _COUNTER_BITS:
                    self._ms += 1
                    counter = self._counter = bits >> 33
                ms = self._ms
        value = (
            (ms & 0xFFFF_FFFF_FFFF) << 80
            | _VERSION_AND_VARIANT
            | (counter >> 30) << 64
            | (counter & 0x3FFF_FFFF) << 32
            | bits & 0xFFFF_FFFF
        )
        # The value is well formed by construction: skip UUID.__init__'s parsing, as the
        # standard library's own constructors of UUIDs from ints do.
        uuid = _new(UUID)
        _set(uuid, "int", value)
        _set(uuid, "is_safe", _UNKNOWN)
        return uuid


uuid7 = _Generator()
"""Return a UUIDv7 that sorts after every one made before it in this process."""

os.register_at_fork(after_in_child=uuid7.forget)
