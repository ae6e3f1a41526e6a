"""The work queue of operations: claims, leases, lookups of an unknown outcome, and the
in-doubt claim of an operation whose worker died after sending it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from paymentorch.clock import utc_now
from paymentorch.domain import OperationStatus, PaymentStatus, PermissionDenied, ValidationError
from paymentorch.domain.processing import Outcome, ProcessorRequest, ProcessorResult
from paymentorch.processors import Router
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER, _simulated, _unsettled
from paymentorch.worker import PaymentWorker


async def _never_known(request: Any) -> Any:
    return ProcessorResult(Outcome.UNKNOWN, message="no answer")


class TestWorkQueue:
    """The work queue: ``claim_operations`` leases each operation to one worker,
    ``settle`` records its outcome once, and an operation whose lease lapsed after it
    may have been sent is looked up, never sent again."""

    pytestmark = pytest.mark.asyncio

    async def test_an_unknown_outcome_is_looked_up_never_failed(self, backend: Backend) -> None:
        """A timeout after the money moved is reconciled by lookup, on the service's clock."""
        now = [utc_now()]
        processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
        async with service_on(backend, processor=processor, clock=lambda: now[0]) as service:
            payment = await service.create_payment(
                CUSTOMER, "10.00", actor=USER, capture_method="automatic"
            )
            worker = PaymentWorker(service)
            await worker.run_once()
            (op,) = await service.operations(payment.id)
            assert op.status is OperationStatus.UNKNOWN
            assert (await service.get_payment(payment.id)).status is PaymentStatus.PENDING
            assert await worker.run_once() == 0  # not due before the first lookup
            now[0] += timedelta(seconds=6)
            await worker.run_once()
            assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
            assert processor.ledger[op.id] == 1

    async def test_not_found_reexecutes_only_when_the_processor_promises(
        self, backend: Backend
    ) -> None:
        """A lost request the processor never saw runs again under the same id: once."""
        now = [utc_now()]
        processor = _simulated(timeout_rate=1.0, executed_on_timeout=0.0)
        async with service_on(backend, processor=processor, clock=lambda: now[0]) as service:
            payment = await service.create_payment(
                CUSTOMER, "10.00", actor=USER, capture_method="automatic"
            )
            worker = PaymentWorker(service)
            await worker.run_once()  # times out; nothing moved
            processor.timeout_rate = 0.0
            now[0] += timedelta(seconds=6)
            await worker.run_once()  # lookup: NOT_FOUND, and the processor promises
            await worker.run_once()  # executed again, under the same id
            (op,) = await service.operations(payment.id)
            assert (op.status, op.lookups) == (OperationStatus.SUCCEEDED, 1)
            assert processor.ledger == {op.id: 1}
            assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED

    async def test_a_person_settles_what_no_lookup_could(self, backend: Backend) -> None:
        """After the last scheduled lookup an operation needs attention, until resolved."""
        now = [utc_now()]
        processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
        async with service_on(backend, processor=processor, clock=lambda: now[0]) as service:
            payment = await service.create_payment(
                CUSTOMER, "10.00", actor=USER, capture_method="automatic"
            )
            processor.refusing = True  # lookups cannot reach it either
            schedule = (timedelta(seconds=1), timedelta(seconds=2))
            worker = PaymentWorker(service, lookup_schedule=schedule)
            processor.refusing = False
            await worker.run_once()  # the execution times out: unknown
            processor.lookup = _never_known  # type: ignore[method-assign]
            for _ in range(3):
                now[0] += timedelta(seconds=3)
                await worker.run_once()
            (op,) = await service.operations_needing_attention()
            assert op.payment_id == payment.id
            assert (await service.health()).status == "degraded"
            assert (await service.get_payment(payment.id)).status is PaymentStatus.PENDING
            with pytest.raises(PermissionDenied):
                await service.resolve_operation(op.id, "succeeded", actor=USER, reason="bank says")
            done = await service.resolve_operation(
                op.id, "succeeded", actor=ADMIN, reason="the bank statement shows it"
            )
            assert done.status is OperationStatus.SUCCEEDED
            assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
            last = (await service.audit_trail(payment.id))[-1]
            assert (last.action, last.actor_id, last.reason) == (
                "confirmed",
                "admin-1",
                "the bank statement shows it",
            )
            assert await service.operations_needing_attention() == []
            with pytest.raises(ValidationError):
                await service.resolve_operation(op.id, "declined", actor=ADMIN, reason="again")

    async def test_a_running_worker_keeps_at_most_a_batch_in_flight(self, backend: Backend) -> None:
        """``run`` claims a new operation as each one finishes, never more than
        ``batch_size`` at once, and finishes what it claimed when stopped."""
        processor = _simulated(latency=(0.001, 0.01))
        calls, most = [0], [0]
        execute = processor.execute

        async def counted(request: ProcessorRequest) -> ProcessorResult:
            calls[0] += 1
            most[0] = max(most[0], calls[0])
            try:
                return await execute(request)
            finally:
                calls[0] -= 1

        processor.execute = counted  # type: ignore[method-assign]
        async with service_on(backend, processor=processor, cache=None) as service:
            made = [
                await service.create_payment(
                    CUSTOMER, "2.00", actor=USER, capture_method="automatic"
                )
                for _ in range(25)
            ]
            stop = asyncio.Event()
            running = asyncio.create_task(
                PaymentWorker(service, batch_size=4, poll_interval=0.01).run(stop)
            )
            while await _unsettled(service.store):  # noqa: ASYNC110 - the worker runs meanwhile
                await asyncio.sleep(0.01)
            stop.set()
            await running
            assert 1 < most[0] <= 4
            assert {(await service.get_payment(p.id)).status for p in made} == {
                PaymentStatus.CONFIRMED
            }
            assert len(processor.ledger) == 25

    async def test_a_worker_that_died_after_sending_is_never_sent_twice(
        self, backend: Backend
    ) -> None:
        """A lease that ran out on a pending operation means it may have been sent: the next
        worker looks it up at every processor, and never fails over to send it again."""
        now = [utc_now()]
        first, second = _simulated(name="first"), _simulated(name="second")
        router = Router([first, second], clock=lambda: now[0])
        async with service_on(backend, processor=router, clock=lambda: now[0]) as service:
            payment = await service.create_payment(CUSTOMER, "10.00", actor=USER,
                                                   capture_method="automatic")  # fmt: skip
            (taken,) = await service.store.claim_operations(
                1, now=now[0], lease_until=now[0] + timedelta(seconds=60)
            )
            await router.execute(
                ProcessorRequest(taken.id, taken.kind, taken.payment_id, taken.amount, "USD")
            )  # ... and the worker dies before recording the answer
            first.refusing = True  # a failover now would charge the customer twice
            worker = PaymentWorker(service)
            assert await worker.run_once() == 0  # still leased
            now[0] += timedelta(seconds=61)
            assert await worker.run_once() == 1
            (op,) = await service.operations(payment.id)
            assert (op.status, op.processor) == (OperationStatus.UNKNOWN, None)
            first.refusing = False
            now[0] += timedelta(seconds=5)
            await worker.run_once()
            (op,) = await service.operations(payment.id)
            assert (op.status, op.processor) == (OperationStatus.SUCCEEDED, "first")
            assert (first.ledger, second.ledger) == ({op.id: 1}, {})
            assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED

    async def test_two_workers_share_the_work_once(self, backend: Backend) -> None:
        """Two workers racing over 30 intents: each operation is executed once, all settle."""
        processor = _simulated(success_rate=0.8)
        async with service_on(backend, processor=processor, cache=None) as service:
            made = [
                await service.create_payment(
                    CUSTOMER, "1.00", actor=USER, capture_method="automatic"
                )
                for _ in range(30)
            ]
            workers = [PaymentWorker(service, batch_size=4) for _ in range(2)]

            async def drain(worker: PaymentWorker) -> None:
                while await worker.run_once():
                    continue

            await asyncio.gather(*(drain(w) for w in workers))
            statuses = Counter([(await service.get_payment(p.id)).status for p in made])
            assert statuses[PaymentStatus.PENDING] == 0
            assert sum(statuses.values()) == 30
            assert all(count == 1 for count in processor.ledger.values())
            assert len(processor.ledger) == statuses[PaymentStatus.CONFIRMED]
