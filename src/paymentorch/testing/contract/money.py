"""The contract's money tests: a plan's money through a processor adds up, at every step.

Each test checks what the simulated processor really moved against what the store shows
(``plan_money_problems``), besides the behaviour it pins.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from paymentorch.domain import (
    AmountExceeded,
    IdempotencyConflict,
    InvalidTransition,
    OperationKind,
    OperationStatus,
    PaymentStatus,
    PermissionDenied,
    ValidationError,
)
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.plans import LateFeePolicy, PlanStatus, PlanTerms
from paymentorch.domain.processing import Outcome, ProcessorResult
from paymentorch.service import PaymentService
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._money import all_movements, plan_money_problems
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER
from paymentorch.testing.simulated import SimulatedProcessor
from paymentorch.worker import PaymentWorker

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FEES = LateFeePolicy(Decimal(10), Decimal(7), cap_percent=25, cap_amount=Decimal(68))


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _processor(**options: Any) -> SimulatedProcessor:
    return SimulatedProcessor(**{"latency": (0, 0), "seed": 19, "success_rate": 1.0, **options})


async def _adds_up(service: PaymentService, payment_id: Any, *processors: Any) -> None:
    plan = await service.plan(payment_id)
    operations = await service.operations(payment_id)
    assert plan_money_problems(plan, operations, all_movements(processors)) == []


async def _drain(worker: PaymentWorker) -> None:
    while await worker.run_once():
        pass


class TestMoney:
    """Money: what the processor moved, what the store shows and what a plan owes agree
    after collections, refunds, fees and callbacks."""

    pytestmark = pytest.mark.asyncio

    async def test_a_plan_collects_installment_one_never_the_order(self, backend: Backend) -> None:
        """With a processor, a plan's creation queues installment 1 (automatic) or an
        authorization of it (manual), never the order: the customer pays 50.00 now of a
        200.00 order, and the payment is Confirmed with the order captured."""
        processor = _processor()
        async with service_on(backend, processor=processor) as service:
            worker = PaymentWorker(service)
            automatic = await service.create_payment(
                CUSTOMER, "200.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            manual = await service.create_payment(
                CUSTOMER, "200.00", actor=USER, capture_method="manual", plan=PlanTerms()
            )
            (first,) = await service.operations(automatic.id)
            assert (first.kind, first.amount, first.installment) == (
                OperationKind.INSTALLMENT, Decimal("50.00"), 1,
            )  # fmt: skip
            (hold,) = await service.operations(manual.id)
            assert (hold.kind, hold.amount) == (OperationKind.AUTHORIZE, Decimal("50.00"))
            await _drain(worker)
            confirmed = await service.get_payment(automatic.id)
            assert (confirmed.status, confirmed.captured_amount) == (
                PaymentStatus.CONFIRMED, Decimal("200.00"),
            )  # fmt: skip
            plan = await service.plan(automatic.id)
            assert (plan.status, plan.owed) == (PlanStatus.ACTIVE, Decimal("150.00"))
            assert (await service.get_payment(manual.id)).status is PaymentStatus.AUTHORIZED
            await service.capture_payment(manual.id, actor=ADMIN)
            await _drain(worker)
            captured = await service.get_payment(manual.id)
            assert (captured.status, captured.captured_amount) == (
                PaymentStatus.CONFIRMED, Decimal("200.00"),
            )  # fmt: skip
            assert (await service.plan(manual.id)).owed == Decimal("150.00")
            assert processor.moved(automatic.id) == processor.moved(manual.id) == Decimal("50.00")
            for payment in (automatic, manual):
                await _adds_up(service, payment.id, processor)

    async def test_a_declined_first_installment_fails_the_payment(self, backend: Backend) -> None:
        """Installment 1 declined is the purchase declined: the payment fails, the plan is
        cancelled, nothing is owed and nothing moved."""
        credit = CreditPolicy(limit=Decimal("500.00"), currency="USD")
        processor = _processor(success_rate=0.0)
        async with service_on(backend, processor=processor, credit=credit) as service:
            payment = await service.create_payment(
                CUSTOMER, "80.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await _drain(PaymentWorker(service))
            assert (await service.get_payment(payment.id)).status is PaymentStatus.FAILED
            assert (await service.plan(payment.id)).status is PlanStatus.CANCELLED
            assert await service.credit_exposure(CUSTOMER) == 0
            assert processor.moved(payment.id) == 0

    @pytest.mark.parametrize("outcome", ["queued", "unknown"])
    async def test_a_refund_waits_for_a_collection_under_way(
        self, backend: Backend, outcome: str
    ) -> None:
        """A refund while installment 2's collection is under way is reserved at once and
        allocated only when the collection has settled: the installment is paid for the
        25.00 collected, and 10.00 of the 60.00 refund goes back through the processor."""
        clock = Clock()
        processor = _processor()
        async with service_on(backend, processor=processor, clock=clock) as service:
            worker = PaymentWorker(service)
            payment = await service.create_payment(
                CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await _drain(worker)
            clock.advance(timedelta(days=14))
            if outcome == "unknown":  # it left, and the answer was lost
                processor.timeout_rate, processor.executed_on_timeout = 1.0, 1.0
            assert await service.collect_installments() == 1
            if outcome == "unknown":
                await worker.run_once()
                (unknown,) = [o for o in await service.operations(payment.id) if o.installment == 2]
                assert unknown.status is OperationStatus.UNKNOWN
                processor.timeout_rate = 0.0
            refund = await service.refund_payment(payment.id, "60.00", actor=ADMIN)
            assert (refund.status, refund.due_at, refund.processor) == (
                OperationStatus.PENDING, None, None,
            )  # fmt: skip
            held = await service.get_payment(payment.id)
            assert (held.pending_refunds, held.refundable) == (Decimal("60.00"), Decimal("40.00"))
            with pytest.raises(AmountExceeded):
                await service.refund_payment(payment.id, "40.01", actor=ADMIN)
            plan = await service.plan(payment.id)
            assert [i.amount for i in plan.installments] == [Decimal("25.00")] * 4
            assert await service.collect_installments() == 0  # nothing sent while it waits
            clock.advance(timedelta(seconds=5))  # the lookup of the unknown one is due
            await worker.run_once()  # the collection settles; the refund is allocated and sent
            (sent,) = [o for o in await service.operations(payment.id) if o.id == refund.id]
            assert (sent.status, sent.processor, sent.processor_amount) == (
                OperationStatus.PENDING, "simulated", Decimal("10.00"),
            )  # fmt: skip
            await _drain(worker)
            plan = await service.plan(payment.id)
            assert [(i.status.value, i.amount, i.refunded_amount) for i in plan.installments] == [
                ("paid", Decimal("25.00"), Decimal(0)),
                ("paid", Decimal("25.00"), Decimal("10.00")),
                ("cancelled", Decimal(0), Decimal(0)),
                ("cancelled", Decimal(0), Decimal(0)),
            ]
            done = await service.get_payment(payment.id)
            assert (done.refunded_amount, done.pending_refunds) == (Decimal("60.00"), Decimal(0))
            assert processor.moved(payment.id) == Decimal("40.00")
            assert await service.operations_needing_attention() == []
            await _adds_up(service, payment.id, processor)

    async def test_a_refund_that_only_reduces_what_is_owed_moves_no_money(
        self, backend: Backend
    ) -> None:
        """A refund on a plan that the unpaid installments absorb completes at once: nothing
        goes to the processor; a bigger one sends only what goes back."""
        processor = _processor()
        async with service_on(backend, processor=processor) as service:
            payment = await service.create_payment(
                CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await _drain(PaymentWorker(service))
            reduced = await service.refund_payment(payment.id, "30.00", actor=ADMIN)
            assert (reduced.status, reduced.processor) == (OperationStatus.SUCCEEDED, None)
            back = await service.refund_payment(payment.id, "50.00", actor=ADMIN)
            assert (back.processor, back.amount, back.processor_amount) == (
                "simulated", Decimal("50.00"), Decimal("5.00"),
            )  # fmt: skip
            await _drain(PaymentWorker(service))
            assert processor.moved(payment.id) == Decimal("20.00")
            assert (await service.plan(payment.id)).status is PlanStatus.COMPLETED
            await _adds_up(service, payment.id, processor)

    async def test_late_means_late(self, backend: Backend) -> None:
        """No fee for an installment whose collection is under way (even with no grace), nor
        for one the library holds back while a refund waits."""
        clock = Clock()
        processor = _processor()
        options = {"processor": processor, "clock": clock, "late_fees": FEES}
        async with service_on(backend, **options) as service:
            worker = PaymentWorker(service)
            payment = await service.create_payment(
                CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await _drain(worker)
            clock.advance(timedelta(days=14))
            assert await worker.run_plans() == 1  # queued, and not overdue in the same tick
            clock.advance(timedelta(hours=1))
            assert await worker.run_plans() == 0  # still under way: not late
            await _drain(worker)
            plan = await service.plan(payment.id)
            assert (plan.late_fees, plan.installments[1].status.value) == ((), "paid")
            # Installment 3's answer is lost; a refund waits for it; installment 4 falls due.
            processor.timeout_rate, processor.executed_on_timeout = 1.0, 1.0
            processor.refusing = False
            clock.advance(timedelta(days=14))
            await worker.run_plans()
            await worker.run_once()
            processor.refusing = True  # lookups go unanswered for a while
            await service.refund_payment(payment.id, "5.00", actor=ADMIN)
            for _ in range(20):
                clock.advance(timedelta(days=1))
                await worker.run_plans()
                await worker.run_once()
            plan = await service.plan(payment.id)
            assert plan.late_fees == ()
            assert [i.status.value for i in plan.installments][2:] == ["scheduled", "scheduled"]
            processor.refusing, processor.timeout_rate = False, 0.0
            clock.advance(timedelta(days=1))
            await worker.run_plans()
            await _drain(worker)
            plan = await service.plan(payment.id)
            assert plan.installments[2].status.value == "paid"
            assert plan.late_fees == ()
            await _adds_up(service, payment.id, processor)

    async def test_a_fee_is_owed_and_collected_with_its_installment(self, backend: Backend) -> None:
        """A late fee belongs to its installment: paying the installment pays it, waiving
        waives it, the next collection takes it, and a plan completes only when every fee is
        paid or waived."""
        clock = Clock()
        processor = _processor()
        store = await backend.open_store()
        by_hand = PaymentService(store, clock=clock, late_fees=FEES)
        service = PaymentService(store, clock=clock, late_fees=FEES, processor=processor)
        worker = PaymentWorker(service)
        try:
            payment = await service.create_payment(
                CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await _drain(worker)
            # Installment 2 is declined, goes overdue and is charged a fee.
            processor.success_rate = 0.0
            clock.advance(timedelta(days=14))
            await worker.run_plans()
            await _drain(worker)
            clock.advance(timedelta(hours=1))
            await worker.run_plans()
            plan = await service.plan(payment.id)
            assert (plan.status, plan.fees_owed, plan.collection_amount(2)) == (
                PlanStatus.DELINQUENT, Decimal(10), Decimal("35.00"),
            )  # fmt: skip
            plan = await service.pay_installment(payment.id, 2, actor=ADMIN)
            assert plan.late_fees[0].paid_at == clock.now
            assert (plan.fees_owed, plan.status) == (Decimal(0), PlanStatus.ACTIVE)
            # Installment 3 goes overdue with a fee before any collection (no processor then).
            clock.advance(timedelta(days=14, hours=1))
            await by_hand.process_overdue()
            plan = await service.plan(payment.id)
            assert plan.collection_amount(3) == Decimal("35.00")
            processor.success_rate = 1.0
            assert await service.collect_installments() == 1
            (third,) = [o for o in await service.operations(payment.id) if o.installment == 3]
            assert third.amount == Decimal("35.00")
            await _drain(worker)
            plan = await service.plan(payment.id)
            assert [f.paid_at is not None for f in plan.late_fees] == [True, True]
            # Installment 4: declined, overdue, charged, then waived with its fee.
            processor.success_rate = 0.0
            clock.advance(timedelta(days=14))
            await worker.run_plans()
            await _drain(worker)
            clock.advance(timedelta(hours=1))
            await worker.run_plans()
            plan = await service.plan(payment.id)
            assert plan.status is PlanStatus.DELINQUENT
            plan = await service.waive_installment(payment.id, 4, actor=ADMIN, reason="hardship")
            assert plan.late_fees[-1].waived_at == clock.now
            assert (plan.status, plan.owed, plan.fees_owed) == (
                PlanStatus.COMPLETED, Decimal(0), Decimal(0),
            )  # fmt: skip
            assert processor.moved(payment.id) == Decimal("60.00")  # 25 and 25 + 10
            await _adds_up(service, payment.id, processor)
        finally:
            await service.aclose()

    async def test_a_callback_speaks_for_its_own_processor(self, backend: Backend) -> None:
        """A callback for an operation sent to another processor, or never sent, is refused
        and changes nothing; once an operation needs a person, callbacks are recorded and
        change nothing."""
        clock = Clock()
        processor = _processor(timeout_rate=1.0, executed_on_timeout=1.0)
        async with service_on(backend, processor=processor, clock=clock) as service:
            record = service.record_processor_event
            said = ProcessorResult(Outcome.SUCCEEDED, reference="gw-9")
            waiting = await service.create_payment(
                CUSTOMER, "10.00", actor=USER, capture_method="automatic"
            )
            (never_sent,) = await service.operations(waiting.id)
            with pytest.raises(PermissionDenied):
                await record("simulated", "evt-0", result=said, operation_id=never_sent.id)
            await PaymentWorker(service).run_once()  # sent; the answer is lost
            (sent,) = await service.operations(waiting.id)
            assert (sent.status, sent.processor) == (OperationStatus.UNKNOWN, "simulated")
            with pytest.raises(PermissionDenied):
                await record("other", "evt-1", result=said, operation_id=sent.id)
            assert (await service.get_payment(waiting.id)).status is PaymentStatus.PENDING
            # Refused callbacks were not recorded: the right processor's delivery applies.
            assert await record("simulated", "evt-0", result=said, operation_id=sent.id) is True
            assert (await service.get_payment(waiting.id)).status is PaymentStatus.CONFIRMED
            late = ProcessorResult(Outcome.DECLINED, code="reversed")
            assert await record("simulated", "evt-2", result=late, operation_id=sent.id) is True
            (flagged,) = await service.operations_needing_attention()
            assert await record("simulated", "evt-3", result=late, operation_id=sent.id) is True
            assert await record("simulated", "evt-4", result=said, operation_id=sent.id) is True
            assert (await service.get_payment(waiting.id)).status is PaymentStatus.CONFIRMED
            assert (await service.operations_needing_attention()) == [flagged]
            assert [e.action for e in await service.audit_trail(waiting.id)] == [
                "created", "confirmed",
            ]  # fmt: skip

    async def test_refunds_racing_on_a_plan_lose_by_the_amount(self, backend: Backend) -> None:
        """Sixteen refunds of 15.00 racing on a 100.00 plan: six win, and every loser is told
        the amount was exceeded."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
            await service.confirm_payment(payment.id, actor=ADMIN)
            results = await asyncio.gather(
                *(service.refund_payment(payment.id, "15.00", actor=ADMIN) for _ in range(16)),
                return_exceptions=True,
            )
            kinds = sorted(type(r).__name__ for r in results)
            assert kinds == ["AmountExceeded"] * 10 + ["Operation"] * 6, [str(r) for r in results]
            done = await service.get_payment(payment.id)
            assert done.refunded_amount == Decimal("90.00")
            plan = await service.plan(payment.id)
            assert sum(i.refunded_amount for i in plan.installments) == Decimal("15.00")

    async def test_a_creation_replay_compares_the_whole_request(self, backend: Backend) -> None:
        """The same creation key asking for another plan or capture method is a conflict."""
        async with service_on(backend, processor=_processor()) as service:
            first = await service.create_payment(
                CUSTOMER, "90.00", actor=USER, idempotency_key="k-1",
                plan=PlanTerms(installments=3), capture_method="automatic",
            )  # fmt: skip
            again = await service.create_payment(
                CUSTOMER, "90.00", actor=USER, idempotency_key="k-1",
                plan=PlanTerms(installments=3), capture_method="automatic",
            )  # fmt: skip
            assert again == first
            for other in (
                {"plan": PlanTerms(installments=12), "capture_method": "automatic"},
                {"plan": None, "capture_method": "automatic"},
                {"plan": PlanTerms(installments=3), "capture_method": "manual"},
                {"plan": PlanTerms(installments=3), "capture_method": None},
            ):
                with pytest.raises(IdempotencyConflict):
                    await service.create_payment(
                        CUSTOMER, "90.00", actor=USER, idempotency_key="k-1", **other
                    )
            plain = await service.create_payment(
                CUSTOMER, "9.00", actor=USER, idempotency_key="k-2"
            )
            with pytest.raises(IdempotencyConflict, match="plan"):
                await service.create_payment(
                    CUSTOMER,
                    "9.00",
                    actor=USER,
                    idempotency_key="k-2",
                    plan=PlanTerms(installments=3),
                )
            assert (await service.get_payment(plain.id)).has_plan is False

    async def test_no_failure_while_money_moves(self, backend: Backend) -> None:
        """``fail_payment`` is refused while a capture or void is under way; failing an
        authorization a processor holds fails the payment and voids the hold."""
        processor = _processor()
        async with service_on(backend, processor=processor) as service:
            worker = PaymentWorker(service)
            capturing = await service.create_payment(
                CUSTOMER, "20.00", actor=USER, capture_method="manual"
            )
            held = await service.create_payment(
                CUSTOMER, "30.00", actor=USER, capture_method="manual"
            )
            await _drain(worker)
            await service.capture_payment(capturing.id, actor=ADMIN)
            with pytest.raises(InvalidTransition, match="under way"):
                await service.fail_payment(capturing.id, reason="fraud", actor=ADMIN)
            failed = await service.fail_payment(held.id, reason="fraud", actor=ADMIN)
            assert (failed.status, failed.failure_reason) == (PaymentStatus.FAILED, "fraud")
            void = (await service.operations(held.id))[-1]
            assert (void.kind, void.status, void.amount) == (
                OperationKind.CANCEL, OperationStatus.PENDING, Decimal("30.00"),
            )  # fmt: skip
            await _drain(worker)
            void = (await service.operations(held.id))[-1]
            assert void.status is OperationStatus.SUCCEEDED
            assert void.id in processor.ledger
            assert (await service.get_payment(held.id)).status is PaymentStatus.FAILED
            assert (await service.get_payment(capturing.id)).status is PaymentStatus.CONFIRMED
            assert await service.operations_needing_attention() == []

    @pytest.mark.parametrize("amount", ["1E+30", "1e400", "99999999999999999999999999999.99", "-1"])
    async def test_amounts_are_checked_at_every_door(self, backend: Backend, amount: str) -> None:
        """An amount out of range at capture, refund or an installment's number is a
        ValidationError, never a decimal or overflow error, and changes nothing."""
        async with service_on(backend) as service:
            authorized = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            await service.authorize_payment(authorized.id, actor=ADMIN)
            confirmed = await service.create_payment(
                CUSTOMER, "10.00", actor=USER, plan=PlanTerms()
            )
            await service.confirm_payment(confirmed.id, actor=ADMIN)
            with pytest.raises(ValidationError):
                await service.capture_payment(authorized.id, actor=ADMIN, amount=amount)
            with pytest.raises(ValidationError):
                await service.refund_payment(confirmed.id, amount, actor=ADMIN)
            with pytest.raises(ValidationError):
                await service.pay_installment(confirmed.id, 10**30, actor=ADMIN)
            assert (await service.get_payment(authorized.id)).version == 2
            assert (await service.get_payment(confirmed.id)).version == 2

    async def test_late_fees_follow_each_currencys_policy(self, backend: Backend) -> None:
        """Several late-fee policies, one per currency: each plan is charged in its own
        currency's amounts, and a plan in a currency without a policy is charged nothing."""
        clock = Clock()
        policies = [LateFeePolicy(Decimal(10)), LateFeePolicy(Decimal(1500), currency="JPY")]
        async with service_on(backend, clock=clock, late_fees=policies) as service:
            made = {
                currency: await service.create_payment(
                    CUSTOMER, amount, actor=USER, currency=currency, plan=PlanTerms()
                )
                for currency, amount in (("USD", "100.00"), ("JPY", "40000"), ("EUR", "100.00"))
            }
            for payment in made.values():
                await service.confirm_payment(payment.id, actor=ADMIN)
            clock.advance(timedelta(days=15))
            assert await service.process_overdue() == 3  # all overdue, two charged
            fees = {c: (await service.plan(p.id)).late_fees for c, p in made.items()}
            assert [f.amount for f in fees["USD"]] == [Decimal("10.00")]
            assert [f.amount for f in fees["JPY"]] == [Decimal(1500)]
            assert fees["EUR"] == ()
