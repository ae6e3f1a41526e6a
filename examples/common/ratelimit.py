"""Per-client rate limits on POST routes, with the `limits` library."""

from __future__ import annotations

import math
import time

from limits import parse, storage, strategies


class RateLimited(Exception):
    """Too many requests from one client (429)."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many requests; retry after {retry_after} s")


class RateLimiter:
    """A moving-window limit such as ``100/minute``, kept in this process's memory."""

    def __init__(self, limit: str) -> None:
        self._item = parse(limit)
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def hit(self, client: str) -> None:
        """Count a request from ``client``; ``RateLimited`` once over the limit."""
        if not self._limiter.hit(self._item, client):
            reset = self._limiter.get_window_stats(self._item, client).reset_time
            raise RateLimited(max(1, math.ceil(reset - time.time())))
