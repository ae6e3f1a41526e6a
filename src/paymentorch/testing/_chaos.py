"""The contract suite's chaos run: processors that time out and refuse, webhooks twice
and out of order, worker processes killed at random and restarted.

Its parts live here so that ``spawn`` can import them in the worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import attrs

from paymentorch.domain import (
    OperationKind,
    OperationStatus,
    Payment,
    PaymentEvent,
    PaymentStatus,
    PermissionDenied,
)
from paymentorch.domain.processing import Outcome, ProcessorResult
from paymentorch.ports import PaymentStore
from paymentorch.processors import Router
from paymentorch.service import PaymentService
from paymentorch.testing.simulated import SimulatedProcessor
from paymentorch.worker import PaymentWorker

StoreFactory = Callable[[], Awaitable[PaymentStore]]
# Longer than any call of the simulated processors takes, as the worker's docs ask: their
# shared ledger file is locked across processes, and a call that waits for that lock past
# its lease could be decided after another worker found nothing there and sent it again.
LEASE = timedelta(seconds=3)
SCHEDULE = tuple(timedelta(seconds=s) for s in (0.2, 0.4, 0.8, 1.6, 3.2, 6.4))


def processors(ledger: str, seed: int | None = None) -> tuple[SimulatedProcessor, ...]:
    """Two processors sharing one ledger file: 5% timeouts (half of them executed) on
    both, and 2% refused connections on the first."""
    common: dict[str, Any] = {
        "success_rate": 0.95,
        "latency": (0.0, 0.004),
        "timeout_rate": 0.05,
        "executed_on_timeout": 0.5,
        "shared": ledger,
    }
    return (
        SimulatedProcessor(name="first", refuse_rate=0.02, seed=seed, **common),
        SimulatedProcessor(name="second", seed=None if seed is None else seed + 1, **common),
    )


def work(open_store: StoreFactory, ledger: str) -> None:
    """A worker process: work until killed."""
    asyncio.run(_work(open_store, ledger))


async def _work(open_store: StoreFactory, ledger: str) -> None:
    router = Router(processors(ledger))
    async with PaymentService(await open_store(), processor=router) as service:
        worker = PaymentWorker(
            service, batch_size=10, lease=LEASE, lookup_schedule=SCHEDULE, poll_interval=0.05
        )
        await worker.run()


@attrs.define
class Workers:
    """Worker processes, killed with SIGKILL at random moments and restarted."""

    open_store: StoreFactory
    ledger: str
    count: int = 2
    kills: int = 0
    _running: list[Any] = attrs.field(factory=list)

    def start(self) -> None:
        """Start the worker processes."""
        while len(self._running) < self.count:
            process = multiprocessing.get_context("spawn").Process(
                target=work, args=(self.open_store, self.ledger), daemon=True
            )
            process.start()
            self._running.append(process)

    async def kill_at_random(
        self,
        stop: asyncio.Event,
        moments: Sequence[int],
        rng: random.Random,
        progress: Callable[[], Awaitable[int]],
    ) -> None:
        """Kill a worker chosen at random as each of ``moments`` (counts of settled
        operations, from ``progress``) passes, and start another in its place: every
        kill lands while work is in flight, however fast the machine."""
        due = sorted(moments)
        while due and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)
            settled = await progress()
            while due and settled >= due[0]:
                due.pop(0)
                victim = self._running.pop(rng.randrange(len(self._running)))
                victim.kill()
                victim.join()
                self.kills += 1
                self.start()

    def stop(self) -> None:
        """Stop every worker."""
        for process in self._running:
            process.kill()
            process.join()
        self._running.clear()


@attrs.define
class Webhooks:
    """Delivers 10% of the processors' answers as callbacks: each twice, in shuffled
    order, with a late ``pending`` after the final answer. A callback the service refuses
    (the worker has recorded no attempt of its operation yet) is delivered again later,
    as a processor retries a webhook it could not deliver."""

    service: PaymentService
    sources: Sequence[SimulatedProcessor]
    rng: random.Random
    fresh: int = 0
    repeats: int = 0
    refused: int = 0
    _seen: set[UUID] = attrs.field(factory=set)
    _retry: list[tuple[str, str, ProcessorResult, UUID]] = attrs.field(factory=list)

    async def deliver_new(self) -> None:
        """Deliver the callbacks for answers given since the last call, and those refused
        before."""
        due, self._retry = self._retry, []
        for processor in self.sources:
            for op_id, answer in processor.answers().items():
                if op_id in self._seen or op_id.int % 10:
                    continue
                self._seen.add(op_id)
                late = ProcessorResult(Outcome.PENDING)
                due += [(processor.name, f"{op_id}", answer, op_id)] * 2
                due.append((processor.name, f"{op_id}-late", late, op_id))
        self.rng.shuffle(due)
        for delivery in due:
            name, event_id, result, op_id = delivery
            by_reference = result.reference is not None and op_id.int % 20 == 0
            try:
                fresh = await self.service.record_processor_event(
                    name,
                    event_id,
                    result=result,
                    operation_id=None if by_reference else op_id,
                    reference=result.reference if by_reference else None,
                )
            except PermissionDenied:
                self.refused += 1
                self._retry.append(delivery)
                continue
            if fresh:
                self.fresh += 1
            else:
                self.repeats += 1

    @property
    def waiting(self) -> int:
        """Callbacks refused so far and not yet delivered."""
        return len(self._retry)

    @property
    def operations(self) -> int:
        """How many operations had callbacks delivered."""
        return len(self._seen)


# What a settled first operation leaves: (audit action, payment status).
_AFTER = {
    (OperationStatus.SUCCEEDED, OperationKind.CHARGE): ("confirmed", PaymentStatus.CONFIRMED),
    (OperationStatus.SUCCEEDED, OperationKind.AUTHORIZE): ("authorized", PaymentStatus.AUTHORIZED),
    (OperationStatus.DECLINED, OperationKind.CHARGE): ("failed", PaymentStatus.FAILED),
    (OperationStatus.DECLINED, OperationKind.AUTHORIZE): ("failed", PaymentStatus.FAILED),
}


@attrs.frozen
class Findings:
    """What the store and the processors' ledger say after a chaos run."""

    statuses: Counter[str]
    executed_twice: list[tuple[str, UUID]]
    at_two_processors: list[UUID]
    disagreements: list[tuple[Any, ...]]
    event_mismatches: list[tuple[UUID, list[str]]]
    lookups: int
    reexecuted: int


async def examine(
    service: PaymentService,
    made: Sequence[Payment],
    sources: Sequence[SimulatedProcessor],
    events: Sequence[PaymentEvent],
) -> Findings:
    """Compare every payment, its operation, audit trail and events with the ledger."""
    answers = {(p.name, op_id): a for p in sources for op_id, a in p.answers().items()}
    moved = {(p.name, op_id): n for p in sources for op_id, n in p.ledger.items()}
    where = Counter(op_id for _, op_id in moved)
    by_payment: dict[UUID, list[str]] = {}
    for event in events:
        by_payment.setdefault(event.payment_id, []).append(event.type)
    statuses: Counter[str] = Counter()
    disagreements: list[tuple[Any, ...]] = []
    mismatches: list[tuple[UUID, list[str]]] = []
    lookups = reexecuted = 0
    for payment in made:
        (op,) = await service.operations(payment.id)
        statuses[op.status.value] += 1
        lookups += op.lookups
        reexecuted += op.attempts > 1
        answer = answers.get((op.processor or "", op.id))
        executed = sum(n for (_, op_id), n in moved.items() if op_id == op.id)
        action, status = _AFTER.get((op.status, op.kind), (None, PaymentStatus.PENDING))
        said = None if answer is None else answer.outcome
        agrees = (
            (op.status is OperationStatus.SUCCEEDED and (said, executed) == (Outcome.SUCCEEDED, 1))
            or (op.status is OperationStatus.DECLINED and (said, executed) == (Outcome.DECLINED, 0))
            or op.status is OperationStatus.NEEDS_ATTENTION  # a person decides; nothing moved it
        )
        stored = await service.get_payment(payment.id)
        trail = [e.action for e in await service.audit_trail(payment.id)]
        if not agrees or (stored.status, trail) != (
            status,
            ["created", *([action] if action else [])],
        ):
            disagreements.append((op, answer, executed, stored.status, trail))
        wanted = ["payment.created", *([f"payment.{action}"] if action else [])]
        if by_payment.get(payment.id) != wanted:
            mismatches.append((payment.id, by_payment.get(payment.id, [])))
    return Findings(
        statuses=statuses,
        executed_twice=[key for key, n in moved.items() if n > 1],
        at_two_processors=[op_id for op_id, n in where.items() if n > 1],
        disagreements=disagreements,
        event_mismatches=mismatches,
        lookups=lookups,
        reexecuted=reexecuted,
    )
