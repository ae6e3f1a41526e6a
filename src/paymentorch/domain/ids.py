"""Time-ordered payment and event ids (UUID version 7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID

_lock = threading.Lock()
_last = [0, 0]  # last millisecond and the counter used within it


def uuid7() -> UUID:
    """Return a UUIDv7 that sorts after every one made before it in this process."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            # Same (or a stepped-back) millisecond: bump the 42-bit counter so ids stay monotonic.
            ms = _last[0]
            counter = _last[1] + 1
            if counter >= 1 << 42:
                ms += 1
                counter = int.from_bytes(os.urandom(6)) & ((1 << 41) - 1)
        else:
            counter = int.from_bytes(os.urandom(6)) & ((1 << 41) - 1)
        _last[0], _last[1] = ms, counter
    rand = int.from_bytes(os.urandom(4))
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | (counter >> 30) << 64  # 12 bits of counter in rand_a
        | 0b10 << 62
        | (counter & 0x3FFF_FFFF) << 32  # 30 bits of counter in rand_b
        | rand
    )
    return UUID(int=value)
