"""When the current service call began, so that a store's ``deadline`` bounds the whole
call (every read, write and retry in it), not each of its steps.

The service marks the start of each public call (``paymentorch.telemetry`` does, for
every operation it times); a store called on its own (a relay, a worker, a script)
counts from the start of its own call.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from datetime import timedelta

_started: ContextVar[float | None] = ContextVar("paymentorch_call_started", default=None)


def begin() -> Token[float | None] | None:
    """Mark the start of a call, unless one is under way already (a call made by another)."""
    if _started.get() is not None:
        return None
    return _started.set(time.monotonic())


def end(token: Token[float | None] | None) -> None:
    """End what ``begin`` started."""
    if token is not None:
        _started.reset(token)


def started() -> float:
    """When the current call began (now, if no call is under way)."""
    return _started.get() or time.monotonic()


def seconds(value: object) -> float | None:
    """``value`` in seconds, from a number or a ``timedelta``; None if it is neither, not
    finite, or not more than zero."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0 < number < float("inf") else None
