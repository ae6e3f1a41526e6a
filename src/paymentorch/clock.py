"""Time: the one clock the service, the relay and the worker read, injectable for tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A function returning the current time, timezone-aware, in UTC."""


def utc_now() -> datetime:
    """The default clock: the system's time in UTC."""
    return datetime.now(UTC)
