"""Time: the one clock the service, the relay and the worker read, injectable for tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""A function returning the current time, timezone-aware, in UTC."""


def utc_now() -> datetime:
    """The default clock: the system's time in UTC."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that tests and hosts move by hand: ``advance`` it through a plan's weeks
    instead of sleeping. Pass it as ``open_service(url, clock=ManualClock(start))``;
    ``start`` in any time zone is kept in UTC."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or utc_now()
        if start.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._now = start.astimezone(UTC)  # a Clock's time is in UTC, whatever it was given in

    def __call__(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move forward by ``by`` (never back); return the new time."""
        if by < timedelta(0):
            raise ValueError("time only moves forward")
        self._now += by
        return self._now
