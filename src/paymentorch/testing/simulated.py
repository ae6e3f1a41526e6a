"""The seed design's simulated processor, honest about what it really executed."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID

from paymentorch.domain.processing import (
    Outcome,
    ProcessorCapabilities,
    ProcessorRequest,
    ProcessorResult,
)


class SimulatedProcessor:
    """A processor in memory: 95% success after 1 to 5 s, as the seed design's was.

    It honours operation ids as idempotency keys: a repeated id returns the first answer
    and moves no money again. ``ledger`` counts, per operation id, how many times money
    really moved (declines are not executions): a correct system never shows a count
    above 1. With ``timeout_rate``, that share of calls time out (``execute`` raises
    ``TimeoutError``) and, of those, ``executed_on_timeout`` had moved the money before
    the answer was lost. ``refusing = True`` makes it refuse connections
    (``NOT_ATTEMPTED``) until set back.
    """

    capabilities = ProcessorCapabilities(lookup=True, not_found_means_not_executed=True)

    def __init__(
        self,
        success_rate: float = 0.95,
        latency: tuple[float, float] = (1.0, 5.0),
        timeout_rate: float = 0.0,
        executed_on_timeout: float = 0.5,
        seed: int | None = None,
        *,
        name: str = "simulated",
    ) -> None:
        for label, rate in (
            ("success_rate", success_rate),
            ("timeout_rate", timeout_rate),
            ("executed_on_timeout", executed_on_timeout),
        ):
            if not 0 <= rate <= 1:
                raise ValueError(f"{label} must be between 0 and 1")
        if not 0 <= latency[0] <= latency[1]:
            raise ValueError("latency must be (low, high) seconds with 0 <= low <= high")
        self.name = name
        self.success_rate = success_rate
        self.latency = latency
        self.timeout_rate = timeout_rate
        self.executed_on_timeout = executed_on_timeout
        self.refusing = False
        self.ledger: dict[UUID, int] = {}
        self._answers: dict[UUID, ProcessorResult] = {}
        self._random = random.Random(seed)

    async def execute(self, request: ProcessorRequest) -> ProcessorResult:
        """Decide (once per operation id), after the simulated latency."""
        if self.refusing:
            return ProcessorResult(Outcome.NOT_ATTEMPTED, message="connection refused")
        # Decided on arrival, before any await: concurrent repeats of one id see one answer.
        answer, timed_out = self._answers.get(request.operation_id), False
        if answer is None:
            timed_out = self._random.random() < self.timeout_rate
            if timed_out and self._random.random() >= self.executed_on_timeout:
                await self._wait()
                raise TimeoutError("the simulated processor did not answer")  # nothing moved
            if self._random.random() < self.success_rate:
                answer = ProcessorResult(Outcome.SUCCEEDED, reference=f"sim-{request.operation_id}")
                self.ledger[request.operation_id] = self.ledger.get(request.operation_id, 0) + 1
            else:
                answer = ProcessorResult(Outcome.DECLINED, code="declined", message="declined")
            self._answers[request.operation_id] = answer
        await self._wait()
        if timed_out:
            raise TimeoutError("the simulated processor answered too late")  # money moved
        return answer

    async def _wait(self) -> None:
        low, high = self.latency
        if high:
            await asyncio.sleep(self._random.uniform(low, high))

    async def lookup(self, request: ProcessorRequest) -> ProcessorResult:
        """The recorded answer for the operation id, or ``NOT_FOUND``."""
        if self.refusing:
            return ProcessorResult(Outcome.NOT_ATTEMPTED, message="connection refused")
        return self._answers.get(request.operation_id, ProcessorResult(Outcome.NOT_FOUND))

    def executions(self) -> int:
        """Money movements in all, over every operation."""
        return sum(self.ledger.values())
