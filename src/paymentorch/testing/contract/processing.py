"""Processing through processors: the worker, callbacks, the router's follow-ups and
the chaos test (workers killed at random while processors time out).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from paymentorch.domain import (
    AmountExceeded,
    InvalidTransition,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentStatus,
    ValidationError,
)
from paymentorch.domain.processing import Outcome, ProcessorResult
from paymentorch.processors import Router
from paymentorch.testing import _chaos as chaos
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import (
    ADMIN,
    CUSTOMER,
    USER,
    _events,
    _shared,
    _simulated,
    _unsettled,
)
from paymentorch.worker import PaymentWorker

CHAOS_PAYMENTS = int(os.environ.get("PAYMENTORCH_CHAOS_PAYMENTS", "2000"))
CHAOS_KILLS = 8


class TestProcessing:
    """Processing: the worker carries out queued operations, callbacks apply once,
    follow-ups go to the processor that holds the money, and no operation moves
    money twice under chaos (which needs ``Backend.shared``)."""

    pytestmark = pytest.mark.asyncio

    async def test_the_worker_confirms_authorizes_and_fails(self, backend: Backend) -> None:
        """Queued in the creation's transaction, charges and authorizations are carried out."""
        processor = _simulated(success_rate=1.0)
        async with service_on(backend, processor=processor) as service:
            charged = await service.create_payment(
                CUSTOMER, "10.00", actor=USER, capture_method="automatic"
            )
            held = await service.create_payment(
                CUSTOMER, "20.00", actor=USER, capture_method="manual"
            )
            (intent,) = await service.operations(charged.id)
            assert (intent.kind, intent.status) == (OperationKind.CHARGE, OperationStatus.PENDING)
            worker = PaymentWorker(service)
            assert await worker.run_once() == 2
            assert await worker.run_once() == 0
            confirmed = await service.get_payment(charged.id)
            assert (confirmed.status, confirmed.captured_amount) == (
                PaymentStatus.CONFIRMED,
                Decimal("10.00"),
            )
            assert (await service.get_payment(held.id)).status is PaymentStatus.AUTHORIZED
            (done,) = await service.operations(charged.id)
            assert (done.status, done.processor, done.attempts) == (
                OperationStatus.SUCCEEDED,
                "simulated",
                1,
            )
            assert done.reference == f"sim-{done.id}"
            trail = await service.audit_trail(charged.id)
            assert [(e.action, e.actor_id) for e in trail] == [
                ("created", "user-1"),
                ("confirmed", "worker"),
            ]
            processor.success_rate = 0.0
            declined = await service.create_payment(
                CUSTOMER, "30.00", actor=USER, capture_method="automatic"
            )
            await worker.run_once()
            failed = await service.get_payment(declined.id)
            assert failed.status is PaymentStatus.FAILED
            assert failed.failure_reason is not None
            assert "declined" in failed.failure_reason
            assert processor.executions() == 2  # declines move no money
            with pytest.raises(ValidationError):
                await service.create_payment(CUSTOMER, "1.00", actor=USER, capture_method="later")

    async def test_callbacks_apply_once(self, backend: Backend) -> None:
        """A webhook settles a waiting operation once; repeats, echoes and late conflicts don't."""
        processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
        async with service_on(backend, processor=processor) as service:
            payment = await service.create_payment(
                CUSTOMER, "10.00", actor=USER, capture_method="automatic"
            )
            await PaymentWorker(service).run_once()  # sent, and the answer lost: unknown
            processor.timeout_rate = 0.0
            (op,) = await service.operations(payment.id)
            said = ProcessorResult(Outcome.SUCCEEDED, reference="gw-1")
            record = service.record_processor_event
            assert await record("simulated", "evt-1", result=said, operation_id=op.id) is True
            assert await record("simulated", "evt-1", result=said, operation_id=op.id) is False
            (settled,) = await service.operations(payment.id)
            assert (settled.status, settled.reference) == (OperationStatus.SUCCEEDED, "gw-1")
            assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
            assert await PaymentWorker(service).run_once() == 0  # nothing left to do
            # The same answer again, under another event id and by reference: no change.
            assert await record("simulated", "evt-2", result=said, reference="gw-1") is True
            assert len(await service.audit_trail(payment.id)) == 2
            # A conflicting late answer: the operation needs a person; the payment stays.
            late = ProcessorResult(Outcome.DECLINED, code="reversed")
            assert await record("simulated", "evt-3", result=late, reference="gw-1") is True
            (flagged,) = await service.operations_needing_attention()
            assert flagged.id == op.id
            assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
            # A person finds the charge stands: the operation settles; the payment was there.
            stands = await service.resolve_operation(op.id, "succeeded", actor=ADMIN,
                                                     reason="the statement shows it")  # fmt: skip
            assert (stands.status, stands.error) == (
                OperationStatus.SUCCEEDED,
                "resolved by hand by admin-1: the statement shows it",
            )
            assert await service.operations_needing_attention() == []
            assert len(await service.audit_trail(payment.id)) == 2
            assert await record("simulated", "evt-4", result=said, reference="unknown") is True
            with pytest.raises(ValidationError):
                await record("simulated", "evt-5", result=said)

    async def test_a_callback_racing_the_worker_applies_once(self, backend: Backend) -> None:
        """The worker's answer and a webhook for one operation, concurrently: one change."""
        processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
        now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
        async with service_on(
            backend, processor=processor, cache=None, clock=lambda: now[0]
        ) as service:
            made = [
                await service.create_payment(
                    CUSTOMER, "3.00", actor=USER, capture_method="automatic"
                )
                for _ in range(10)
            ]
            await PaymentWorker(service, batch_size=10).run_once()  # sent; every answer lost
            processor.timeout_rate = 0.0
            now[0] += timedelta(seconds=5)  # the lookups are due: they race the webhooks
            ops = [(await service.operations(p.id))[0] for p in made]
            said = ProcessorResult(Outcome.SUCCEEDED, reference="gw")
            await asyncio.gather(
                PaymentWorker(service, batch_size=10).run_once(),
                *(
                    service.record_processor_event("simulated", f"e-{o.id}", result=said,
                                                   operation_id=o.id)
                    for o in ops
                ),
            )  # fmt: skip
            for payment in made:
                trail = await service.audit_trail(payment.id)
                assert [e.action for e in trail] == ["created", "confirmed"]
            assert await service.operations_needing_attention() == []

    async def test_follow_ups_go_to_the_processor_that_holds_the_money(
        self, backend: Backend
    ) -> None:
        """Capture, refund and void are queued like charges, sent where the original is."""
        primary, backup = _simulated(name="primary"), _simulated(name="backup")
        primary.refusing = True  # the authorization fails over to the backup
        router = Router([primary, backup])
        async with service_on(backend, processor=router) as service:
            worker = PaymentWorker(service)
            payment = await service.create_payment(CUSTOMER, "10.00", actor=USER,
                                                   capture_method="manual")  # fmt: skip
            await worker.run_once()
            primary.refusing = False
            queued = await service.capture_payment(payment.id, actor=ADMIN, amount="6.00")
            assert (queued.status, queued.version) == (PaymentStatus.AUTHORIZED, 3)
            for second in (
                partial(service.capture_payment, payment.id, actor=ADMIN),
                partial(service.cancel_payment, payment.id, actor=ADMIN),
            ):
                with pytest.raises(InvalidTransition, match="capture is under way"):
                    await second()
            await worker.run_once()
            captured = await service.get_payment(payment.id)
            assert (captured.status, captured.captured_amount) == (
                PaymentStatus.CONFIRMED,
                Decimal("6.00"),
            )
            first = await service.refund_payment(payment.id, "2.00", actor=ADMIN)
            assert (first.status, first.processor) == (OperationStatus.PENDING, "backup")
            with pytest.raises(AmountExceeded):  # 4.00 is left: the pending 2.00 is reserved
                await service.refund_payment(payment.id, "5.00", actor=ADMIN)
            await worker.run_once()
            backup.success_rate = 0.0
            rest = await service.refund_payment(payment.id, actor=ADMIN)
            assert rest.amount == Decimal("4.00")
            await worker.run_once()
            after = await service.get_payment(payment.id)
            assert (after.status, after.refunded_amount, after.pending_refunds) == (
                PaymentStatus.CONFIRMED,
                Decimal("2.00"),
                Decimal(0),
            )
            ops = await service.operations(payment.id)
            assert [(o.kind.value, o.status.value, o.processor) for o in ops] == [
                ("authorize", "succeeded", "backup"),
                ("capture", "succeeded", "backup"),
                ("refund", "succeeded", "backup"),
                ("refund", "declined", "backup"),
            ]
            assert primary.ledger == {}
            assert set(backup.ledger) == {o.id for o in ops[:3]}
            assert all(count == 1 for count in backup.ledger.values())
            assert [e.action for e in await service.audit_trail(payment.id)] == [
                "created",
                "authorized",
                "capture_queued",
                "captured",
                "refund_queued",
                "refunded",
                "refund_queued",
                "refund_declined",
            ]
            types = [e.type for e in await _events(service.store) if e.payment_id == payment.id]
            assert types[-2:] == ["payment.refund_queued", "payment.refund_declined"]

    async def test_a_void_through_the_processor_and_one_never_sent(self, backend: Backend) -> None:
        """Cancelling an authorization asks the processor; a charge cancelled first is not sent."""
        processor = _simulated()
        async with service_on(backend, processor=processor) as service:
            worker = PaymentWorker(service)
            held = await service.create_payment(
                CUSTOMER, "8.00", actor=USER, capture_method="manual"
            )
            await worker.run_once()
            asked = await service.cancel_payment(
                held.id, actor=ADMIN, reason="customer changed mind"
            )
            assert asked.status is PaymentStatus.AUTHORIZED
            await worker.run_once()
            assert (await service.get_payment(held.id)).status is PaymentStatus.CANCELLED
            charge = await service.create_payment(CUSTOMER, "9.00", actor=USER,
                                                  capture_method="automatic")  # fmt: skip
            await service.cancel_payment(charge.id, actor=ADMIN)  # before the worker sends it
            await worker.run_once()
            (unsent,) = await service.operations(charge.id)
            assert (unsent.status, unsent.attempts) == (OperationStatus.DECLINED, 0)
            assert unsent.error == "not sent: the payment is Cancelled"
            assert unsent.id not in processor.ledger
            assert len(processor.ledger) == 2  # the authorization and the void
            by_hand = await service.create_payment(CUSTOMER, "7.00", actor=USER)
            await service.confirm_payment(by_hand.id, actor=ADMIN)
            inline = await service.refund_payment(by_hand.id, actor=ADMIN)  # no processor holds it
            assert (inline.status, inline.processor) == (OperationStatus.SUCCEEDED, None)

    async def test_concurrent_refunds_through_a_processor_never_exceed_the_capture(
        self,
        backend: Backend,
    ) -> None:
        """16 refunds asking for 150% of the capture, at once: at most 100% is reserved."""
        processor = _simulated()
        async with service_on(backend, processor=processor, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "16.00", actor=USER,
                                                   capture_method="automatic")  # fmt: skip
            worker = PaymentWorker(service, batch_size=20)
            await worker.run_once()

            async def ask() -> Operation | None:
                try:
                    return await service.refund_payment(payment.id, "1.50", actor=ADMIN)
                except AmountExceeded:
                    return None

            asked = [op for op in await asyncio.gather(*(ask() for _ in range(16))) if op]
            assert len(asked) == 10  # 10 x 1.50 = 15.00 <= 16.00 < 11 x 1.50
            while await worker.run_once():
                continue
            after = await service.get_payment(payment.id)
            assert (after.refunded_amount, after.pending_refunds) == (Decimal("15.00"), Decimal(0))
            assert all(processor.ledger[op.id] == 1 for op in asked)

    async def test_chaos_never_charges_twice_nor_guesses(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        """Payments flow through two processors (5% timeouts, half of them executed; 2%
        refused connections on the first) while two worker processes are killed with SIGKILL
        at random and restarted, and 10% of the answers also arrive as webhooks, twice and out
        of order. In the end no operation moved money twice, the store agrees with the
        processors' ledger, nothing was failed by a timer, and every payment's status, audit
        trail and events agree."""
        _shared(backend)
        rng = random.Random(20261126)
        ledger = str(tmp_path / "processors.db")
        sources = chaos.processors(ledger, seed=1)
        async with service_on(backend, processor=Router(sources), cache=None) as service:
            workers = chaos.Workers(backend.open_store, ledger)
            webhooks = chaos.Webhooks(service, sources, rng)
            stop = asyncio.Event()
            workers.start()
            made: list[Payment] = []

            async def settled() -> int:
                waiting = await service.store.count(status=PaymentStatus.PENDING, customer_id=None)
                return len(made) - waiting

            moments = rng.sample(range(100, max(101, CHAOS_PAYMENTS - 100)), CHAOS_KILLS)
            killing = asyncio.create_task(workers.kill_at_random(stop, moments, rng, settled))
            started = time.monotonic()
            try:
                for index in range(CHAOS_PAYMENTS):
                    method = "manual" if index % 10 == 0 else "automatic"
                    amount = f"{1 + index % 97}.25"
                    made.append(
                        await service.create_payment(
                            CUSTOMER, amount, actor=USER, capture_method=method
                        )
                    )
                    if index % 50 == 0:
                        await webhooks.deliver_new()
                while not killing.done() or await _unsettled(service.store):
                    assert time.monotonic() - started < 600, "the workers did not finish in time"
                    await webhooks.deliver_new()
                    await asyncio.sleep(0.1)  # polling for completion, not waiting out a race
            finally:
                stop.set()
                await killing
                workers.stop()
            await webhooks.deliver_new()
            elapsed = time.monotonic() - started
            found = await chaos.examine(service, made, sources, await _events(service.store))
            print(
                f"\nchaos on {backend.name}: {len(made)} payments in {elapsed:.1f} s,"
                f" {workers.kills} workers killed, operations {dict(found.statuses)},"
                f" {found.lookups} lookups, {found.reexecuted} executed again under the same id,"
                f" callbacks for {webhooks.operations} operations"
                f" ({webhooks.fresh} new, {webhooks.repeats} repeats, {webhooks.refused} refused"
                " before the worker had sent their operation, and delivered again)"
            )
            assert found.executed_twice == []
            assert found.at_two_processors == []
            assert found.disagreements == []
            assert found.statuses["pending"] == found.statuses["unknown"] == 0  # no timer decided
            assert found.event_mismatches == []
            assert workers.kills == CHAOS_KILLS
            assert (webhooks.fresh, webhooks.repeats) == (
                2 * webhooks.operations,
                webhooks.operations,
            )
            assert webhooks.waiting == 0
