"""``PaymentWorker``: carries out queued operations through the processor, and
reconciles the ones whose outcome nobody knows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import attrs

from paymentorch.domain import Actor, Operation, OperationStatus, PaymentError
from paymentorch.domain.orchestration import LOOKUP_SCHEDULE, decide
from paymentorch.domain.processing import Outcome, ProcessorRequest, ProcessorResult
from paymentorch.service import PaymentService

logger = logging.getLogger("paymentorch.worker")


class PaymentWorker:
    """Claims due operations with a lease, asks the processor, records the answer.

    A pending operation is executed (its id is the processor's idempotency key); an
    unknown one is looked up on ``lookup_schedule``, and after the last lookup it
    needs a person (``service.operations_needing_attention()``). Several workers, in
    one process or many, share the work: a claimed operation is leased for ``lease``.
    Every answer is recorded with the payment's change, audit entry and event, in one
    transaction. Time is the service's clock.
    """

    def __init__(
        self,
        service: PaymentService,
        *,
        batch_size: int = 10,
        lease: timedelta = timedelta(seconds=60),
        lookup_schedule: tuple[timedelta, ...] = LOOKUP_SCHEDULE,
        poll_interval: float = 0.5,
        actor: Actor | None = None,
    ) -> None:
        if service.processor is None:
            raise ValueError("the service has no processor: open it with processor=...")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.service = service
        self.processor = service.processor
        self.batch_size = batch_size
        self.lease = lease
        self.lookup_schedule = tuple(lookup_schedule)
        self.poll_interval = poll_interval
        self.actor = actor or Actor.system("worker")

    async def run_once(self) -> int:
        """Work one batch of due operations; return how many were claimed."""
        now = self.service.clock()
        claimed = await self.service.store.claim_operations(
            self.batch_size, now=now, lease_until=now + self.lease
        )
        for operation in claimed:
            await self._work(operation)
        return len(claimed)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Work until ``stop`` is set, waiting ``poll_interval`` whenever nothing is due."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except PaymentError:
                logger.exception("payment worker could not reach the store; retrying")
                worked = 0
            if worked < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)

    async def _work(self, operation: Operation) -> None:
        request = ProcessorRequest(
            operation_id=operation.id,
            kind=operation.kind,
            payment_id=operation.payment_id,
            amount=operation.amount,
            currency=operation.currency,
            reference=operation.reference,
            processor=operation.processor,
        )
        looked_up = operation.status is OperationStatus.UNKNOWN
        try:
            if looked_up:
                result = await self.processor.lookup(request)
            else:
                result = await self.processor.execute(request)
        except Exception as exc:  # never a decline: nobody knows what happened
            logger.warning("processor raised %s for operation %s", type(exc).__name__, operation.id)
            result = ProcessorResult(
                Outcome.UNKNOWN, code="exception", message=f"{type(exc).__name__}: {exc}"
            )
        if result.processor is None:  # a single processor, not a router: it answered
            result = attrs.evolve(result, processor=self.processor.name)
        step = decide(
            operation,
            result,
            looked_up=looked_up,
            at=self.service.clock(),
            schedule=self.lookup_schedule,
            capabilities=self.processor.capabilities,
        )
        if not await self.service.settle_operation(operation, step, actor=self.actor):
            logger.info("operation %s was settled elsewhere meanwhile", operation.id)
