"""What the Redis cache's async and blocking forms share: the Lua scripts, and the local
tier that applies invalidations (the entries' text form is ``paymentorch.adapters._wire``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from uuid import UUID

from paymentorch.domain import Payment

# Each entry is "<version>|<payment as JSON>" under <namespace>:p:<generation>:<id>. A
# generation is "<run id of the server that began it>.<n>": the first script to run on a
# restarted server (with its data or without) begins a new one, since what the server
# kept may have been changed in the store while it was away; a new generation orphans
# every entry. A process that could not read or write begins one too (NEW_GENERATION).
# ARGV[1] is always the invalidation channel.
_GENERATION = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local generation = redis.call('GET', KEYS[1])
if not generation or string.sub(generation, 1, #run + 1) ~= run .. '.' then
  generation = run .. '.' .. redis.call('INCR', KEYS[1] .. ':n')
  redis.call('SET', KEYS[1], generation)
  redis.call('PUBLISH', ARGV[1], '*')
end
"""

GET = (
    _GENERATION
    + """
return {generation, redis.call('GET', ARGV[2] .. generation .. ':' .. ARGV[3])}
"""
)

# Never replaces a newer version; publishes "<id> <version>" when the entry moved forward.
SET = (
    _GENERATION
    + """
local key = ARGV[2] .. generation .. ':' .. ARGV[3]
local current = redis.call('GET', key)
if current then
  local version = tonumber(string.match(current, '^(%d+)|'))
  if version > tonumber(ARGV[4]) then return 0 end
  if version == tonumber(ARGV[4]) then redis.call('PEXPIRE', key, ARGV[6]) return 1 end
end
redis.call('SET', key, ARGV[5], 'PX', ARGV[6])
redis.call('PUBLISH', ARGV[1], ARGV[3] .. ' ' .. ARGV[4])
return 2
"""
)

DELETE = (
    _GENERATION
    + """
redis.call('DEL', ARGV[2] .. generation .. ':' .. ARGV[3])
redis.call('PUBLISH', ARGV[1], ARGV[3] .. ' -')
return 1
"""
)

# After this process could not reach Redis: every entry may be stale.
NEW_GENERATION = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local generation = run .. '.' .. redis.call('INCR', KEYS[1] .. ':n')
redis.call('SET', KEYS[1], generation)
redis.call('PUBLISH', ARGV[1], '*')
return generation
"""


class LocalTier:
    """Payments in this process, kept coherent by the invalidations it is given.

    Every id keeps a floor: the newest version this process has read or been told of.
    Nothing older is kept or returned again, so a read that fetched from Redis before a
    change, and offers its result after the change's invalidation arrived, cannot put
    the older version back: a process never reads a version older than one it has
    read. ``clear`` refuses offers from reads that began before it (an epoch counts
    the clears).
    """

    def __init__(self, maxsize: int, ttl: float) -> None:
        self._entries: OrderedDict[UUID, tuple[float, int, Payment | None]] = OrderedDict()
        self._maxsize = maxsize
        self._ttl = ttl
        self._lock = threading.Lock()
        self.epoch = 0

    def get(self, payment_id: UUID) -> Payment | None:
        with self._lock:
            entry = self._entries.get(payment_id)
            if entry is None or entry[2] is None or entry[0] <= time.monotonic():
                return None
            self._entries.move_to_end(payment_id)
            return entry[2]

    def floor(self, payment_id: UUID) -> int:
        """The oldest version this process may still return for the payment."""
        with self._lock:
            entry = self._entries.get(payment_id)
            return 0 if entry is None else entry[1]

    def offer(self, payment: Payment, epoch: int) -> None:
        """Keep ``payment`` unless something newer was seen or the tier was cleared since
        the read that found it began (at ``epoch``)."""
        with self._lock:
            if epoch != self.epoch:
                return
            entry = self._entries.get(payment.id)
            if entry is not None and entry[1] > payment.version:
                return
            self._put(payment.id, (time.monotonic() + self._ttl, payment.version, payment))

    def invalidate(self, payment_id: UUID, version: int | None) -> None:
        """A change to ``version`` (None: forget the entry, keep its floor)."""
        with self._lock:
            entry = self._entries.get(payment_id)
            floor = 0 if entry is None else entry[1]
            if version is not None and entry is not None and entry[1] >= version:
                return  # what we hold is that version or newer
            self._put(payment_id, (time.monotonic() + self._ttl, max(floor, version or 0), None))

    def clear(self) -> None:
        """Drop every payment (the floors stay: those versions were committed)."""
        with self._lock:
            self._entries = OrderedDict(
                (payment_id, (expiry, version, None))
                for payment_id, (expiry, version, _) in self._entries.items()
            )
            self.epoch += 1

    def apply(self, message: str | bytes) -> None:
        """An invalidation as published: ``<id> <version>``, ``<id> -`` or ``*``."""
        text = message.decode() if isinstance(message, bytes) else message
        if text == "*":
            self.clear()
            return
        payment_id, _, version = text.partition(" ")
        self.invalidate(UUID(payment_id), None if version == "-" else int(version))

    def _put(self, payment_id: UUID, entry: tuple[float, int, Payment | None]) -> None:
        self._entries[payment_id] = entry
        self._entries.move_to_end(payment_id)
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
