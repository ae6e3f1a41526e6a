"""``Router``: several processors behind one, failing over only where it is safe.

A request moves to the next processor only when the one tried answers
``NOT_ATTEMPTED`` (nothing left this side: connection refused, circuit open). Never
after ``DECLINED``, a business answer, and never after ``UNKNOWN``: money may have
moved, and the same processor must be asked what happened before anything else is
tried. Follow-ups (capture, cancel, refund) and lookups go to the processor that holds
the original.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import attrs

from paymentorch.clock import Clock, utc_now
from paymentorch.domain.processing import (
    Outcome,
    ProcessorCapabilities,
    ProcessorRequest,
    ProcessorResult,
)
from paymentorch.ports import PaymentProcessor

logger = logging.getLogger("paymentorch.processors")

_TROUBLE = frozenset({Outcome.NOT_ATTEMPTED, Outcome.UNKNOWN})


@attrs.define
class CircuitBreaker:
    """Stops sending to a processor after ``threshold`` troubles in a row.

    A trouble is ``NOT_ATTEMPTED`` or ``UNKNOWN`` (an exception counts as one). Open, the
    breaker lets nothing through until ``cooldown`` has passed on the clock; then it lets
    one request through (half-open): a clean answer closes it, a trouble opens it again.
    """

    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    clock: Clock = utc_now
    failures: int = 0
    open_until: datetime | None = None
    _trial: bool = False

    def allows(self) -> bool:
        """Whether a request may go through now."""
        if self.open_until is None:
            return True
        if self._trial or self.clock() < self.open_until:
            return False
        self._trial = True  # half-open: one request tries the water
        return True

    def record(self, outcome: Outcome) -> None:
        """Count an answer."""
        if outcome in _TROUBLE:
            self.failures += 1
            if self._trial or self.failures >= self.threshold:
                self.open_until = self.clock() + self.cooldown
        else:
            self.failures = 0
            self.open_until = None
        self._trial = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``, for health reports."""
        if self.open_until is None:
            return "closed"
        return "half-open" if self._trial or self.clock() >= self.open_until else "open"


class Router:
    """A ``PaymentProcessor`` that tries ``processors`` in the order ``choose`` gives.

    ``choose(request)`` returns the processors to try for a first request, best first
    (default: the order given). Each processor has a ``CircuitBreaker``.
    """

    name = "router"

    def __init__(
        self,
        processors: Sequence[PaymentProcessor],
        *,
        choose: Callable[[ProcessorRequest], Sequence[PaymentProcessor]] | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown: timedelta = timedelta(seconds=30),
        clock: Clock = utc_now,
    ) -> None:
        if not processors:
            raise ValueError("a Router needs at least one processor")
        names = [p.name for p in processors]
        if len(set(names)) != len(names):
            raise ValueError(f"processor names must differ: {names}")
        self.processors = {p.name: p for p in processors}
        self._choose = choose
        self.breakers = {
            name: CircuitBreaker(breaker_threshold, breaker_cooldown, clock) for name in names
        }
        self.capabilities = ProcessorCapabilities(
            lookup=all(p.capabilities.lookup for p in processors),
            not_found_means_not_executed=all(
                p.capabilities.not_found_means_not_executed for p in processors
            ),
        )

    async def execute(self, request: ProcessorRequest) -> ProcessorResult:
        """The first processor's answer that is not ``NOT_ATTEMPTED``."""
        if request.processor is not None:  # a follow-up: only where the original is
            return await self._call(self._pinned(request), request, lookup=False)
        chosen = self._choose(request) if self._choose else list(self.processors.values())
        last = ProcessorResult(Outcome.NOT_ATTEMPTED, message="no processor to try")
        for processor in chosen:
            last = await self._call(processor, request, lookup=False)
            if last.outcome is not Outcome.NOT_ATTEMPTED:
                return last
        return last

    async def lookup(self, request: ProcessorRequest) -> ProcessorResult:
        """Ask the processor that holds the operation (``request.processor``); when none
        is named, ask each in turn and return the first that knows the operation."""
        if request.processor is not None:
            return await self._call(self._pinned(request), request, lookup=True)
        found = ProcessorResult(Outcome.NOT_FOUND)
        for processor in self.processors.values():
            found = await self._call(processor, request, lookup=True)
            if found.outcome is not Outcome.NOT_FOUND:
                return found
        return found

    def _pinned(self, request: ProcessorRequest) -> PaymentProcessor:
        if request.processor not in self.processors:
            raise LookupError(f"no processor named {request.processor!r} in this router")
        return self.processors[request.processor]

    async def _call(
        self, processor: PaymentProcessor, request: ProcessorRequest, *, lookup: bool
    ) -> ProcessorResult:
        breaker = self.breakers[processor.name]
        if not breaker.allows():
            return ProcessorResult(
                Outcome.NOT_ATTEMPTED, message="circuit open", processor=processor.name
            )
        try:
            call = processor.lookup if lookup else processor.execute
            result = await call(request)
        except Exception as exc:  # an exception is never a decline: nobody knows
            logger.warning("processor %s raised %s", processor.name, type(exc).__name__)
            result = ProcessorResult(
                Outcome.UNKNOWN, code="exception", message=f"{type(exc).__name__}: {exc}"
            )
        breaker.record(result.outcome)
        return attrs.evolve(result, processor=processor.name)
