"""``PaymentWorker``: carries out queued operations through the processor, and
reconciles the ones whose outcome nobody knows."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import attrs

from paymentorch.domain import Actor, Operation, OperationStatus, PaymentError
from paymentorch.domain.orchestration import LOOKUP_SCHEDULE, decide
from paymentorch.domain.processing import Outcome, ProcessorResult
from paymentorch.processors import Router
from paymentorch.service import PaymentService
from paymentorch.usecases import work

logger = logging.getLogger("paymentorch.worker")


class PaymentWorker:
    """Claims due operations with a lease, asks the processor, records the answer.

    Every ``plans_every`` it also queues the collection of installments due and
    processes overdue ones (``run_plans``).

    A pending operation is executed (its id is the processor's idempotency key); an
    unknown one is looked up on ``lookup_schedule``, and after the last lookup it
    needs a person (``service.operations_needing_attention()``). Several workers, in
    one process or many, share the work: a claimed operation is leased for ``lease``.
    Every answer is recorded with the payment's change, audit entry and event, in one
    transaction. Up to ``batch_size`` operations are in flight at once. Time is the
    service's clock.
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
        plans_every: timedelta = timedelta(seconds=10),
    ) -> None:
        if service.processor is None:
            raise ValueError("the service has no processor: open it with processor=...")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if lease <= timedelta(0):
            raise ValueError("lease must be longer than 0")
        self.service = service
        self.processor = service.processor
        self.batch_size = batch_size
        self.lease = lease
        self.lookup_schedule = tuple(lookup_schedule)
        self.poll_interval = poll_interval
        self.actor = actor or Actor.system("worker")
        self.plans_every = plans_every

    async def run_once(self) -> int:
        """Work one batch of due operations, all at once; return how many were claimed."""
        claimed, until = await self._claim(self.batch_size)
        await asyncio.gather(*(self._work(operation, until) for operation in claimed))
        return len(claimed)

    async def run_plans(self) -> int:
        """The plans tick: queue the collection of installments due (retries included),
        process overdue ones (late fees by the service's policy), write reminders and
        charge off plans past the collection policy's limit; return how many plans were
        touched."""
        queued = 0
        while collected := await self.service.collect_installments():  # every one due
            queued += collected
        overdue = await self.service.process_overdue()
        return queued + overdue + await self.service.process_collections()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Work until ``stop`` is set: up to ``batch_size`` operations in flight, a new one
        claimed as soon as one is done; ``poll_interval`` seconds between looks when
        nothing is due. What was claimed is finished before it returns."""
        stop = stop or asyncio.Event()
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        running: set[asyncio.Future[Any]] = set()
        plans_at = self.service.clock()
        try:
            while not stop.is_set():
                if self.service.clock() >= plans_at:  # installments due, late fees
                    try:
                        await self.run_plans()
                    except PaymentError:
                        logger.exception("payment worker could not reach the store; retrying")
                    plans_at = self.service.clock() + self.plans_every
                free = self.batch_size - len(running)
                try:
                    claimed, until = await self._claim(free) if free else ([], None)
                except PaymentError:
                    logger.exception("payment worker could not reach the store; retrying")
                    claimed = []
                for operation in claimed:
                    task = asyncio.ensure_future(self._work_logged(operation, until))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if len(running) >= self.batch_size:  # full: wait for one to finish
                    await asyncio.wait({stopping, *running}, return_when=asyncio.FIRST_COMPLETED)
                elif len(claimed) < free:  # nothing more is due: look again in a while
                    await asyncio.wait({stopping}, timeout=self.poll_interval)
        finally:
            stopping.cancel()
            if running:
                await asyncio.gather(*running)

    async def _claim(self, limit: int) -> tuple[list[Operation], datetime]:
        until = self.service.clock() + self.lease
        return await work.claim(self.service.context, limit, lease_until=until), until

    async def _work_logged(self, operation: Operation, lease_until: datetime | None) -> None:
        try:
            await self._work(operation, lease_until)
        except Exception:  # the lease runs out and the operation is looked up: keep working
            logger.exception("payment worker failed on operation %s", operation.id)

    async def _work(self, operation: Operation, lease_until: datetime | None) -> None:
        request = await work.prepare(self.service.context, operation, actor=self.actor)
        if request is None:  # withdrawn, unsent
            return
        looked_up = operation.status is OperationStatus.UNKNOWN
        # Past its lease another worker may hold the operation and ask the processor what
        # became of it: a call of ours still under way then could move money after that
        # answer. So no call starts after the lease, and none outlives it.
        left = (lease_until - self.service.clock()).total_seconds() if lease_until else 0.0
        if left <= 0:
            logger.warning("the lease on operation %s ran out before it was sent", operation.id)
            return
        try:
            call = self.processor.lookup if looked_up else self.processor.execute
            result = await asyncio.wait_for(call(request), timeout=left)
        except Exception as exc:  # never a decline: nobody knows what happened
            logger.warning("processor raised %s for operation %s", type(exc).__name__, operation.id)
            result = ProcessorResult(
                Outcome.UNKNOWN, code="exception", message=f"{type(exc).__name__}: {exc}"
            )
        # A single processor's answer (or failure) is its own. A router names the one that
        # answered; a call cut short inside a router (the lease ran out) names none, so
        # the operation is looked up at every processor before anything is sent again.
        if result.processor is None and not isinstance(self.processor, Router):
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
