"""Installment plans: stored with their payment, activated, overdue, late fees, paid,
waived and collected by the worker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from paymentorch.domain import (
    OperationStatus,
    PaymentNotFound,
    PaymentStatus,
    PermissionDenied,
    ValidationError,
    plans,
    uuid7,
)
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.plans import LateFeePolicy, PlanStatus, PlanTerms
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import (
    ADMIN,
    CUSTOMER,
    USER,
    _changed,
    _created,
    _events,
    _simulated,
)
from paymentorch.worker import PaymentWorker

AFTERPAY_AU = LateFeePolicy(
    first_fee=Decimal(10), repeat_fee=Decimal(7), cap_percent=25, cap_amount=Decimal(68),
    single_fee_below=Decimal(40),
)  # fmt: skip


class TestPlans:
    """Installment plans: ``add`` and ``apply`` keep a plan with its payment; ``plan``,
    ``plans_due`` and ``installments_due`` find it again."""

    pytestmark = pytest.mark.asyncio

    async def test_a_plan_from_purchase_to_completion(self, backend: Backend) -> None:
        """Pay in 4: stored with the payment, activated by confirmation, overdue and late
        fees on the clock, paid by hand, a refund allocated from the last installment; the
        exposure follows what is owed and every step leaves its events."""
        now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
        credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
        async with service_on(backend, clock=lambda: now[0], credit=credit,
                              late_fees=AFTERPAY_AU) as service:  # fmt: skip
            payment = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
            assert payment.has_plan
            plan = await service.plan(payment.id)
            assert (plan.status, [i.amount for i in plan.installments]) == (
                PlanStatus.PENDING, [Decimal("25.00")] * 4,
            )  # fmt: skip
            assert await service.credit_exposure(CUSTOMER) == Decimal("100.00")
            with pytest.raises(ValidationError, match="captured whole"):
                await service.capture_payment(payment.id, actor=ADMIN, amount="50.00")
            await service.confirm_payment(payment.id, actor=ADMIN)
            plan = await service.plan(payment.id)
            assert (plan.status, plan.installments[0].status) == (PlanStatus.ACTIVE, "paid")
            assert await service.credit_exposure(CUSTOMER) == Decimal("75.00")
            assert await service.process_overdue() == 0
            now[0] += timedelta(days=15)
            assert await service.process_overdue() == 1
            assert await service.process_overdue() == 0  # nothing new at the same moment
            now[0] += timedelta(days=8)
            assert await service.process_overdue() == 1  # the repeat fee, 7 days on
            plan = await service.plan(payment.id)
            assert plan.status is PlanStatus.DELINQUENT
            assert [(f.installment, f.amount) for f in plan.late_fees] == [
                (2, Decimal(10)), (2, Decimal(7)),
            ]  # fmt: skip
            with pytest.raises(PermissionDenied):
                await service.pay_installment(payment.id, 2, actor=USER)
            plan = await service.pay_installment(payment.id, 2, actor=ADMIN)
            assert plan.status is PlanStatus.ACTIVE
            assert await service.credit_exposure(CUSTOMER) == Decimal("50.00")
            refund_op = await service.refund_payment(payment.id, "30.00", actor=ADMIN)
            assert refund_op.status is OperationStatus.SUCCEEDED
            plan = await service.plan(payment.id)
            assert [(i.status.value, i.amount) for i in plan.installments[2:]] == [
                ("scheduled", Decimal("20.00")), ("cancelled", Decimal("0.00")),
            ]  # fmt: skip
            assert await service.credit_exposure(CUSTOMER) == Decimal("20.00")
            plan = await service.pay_installment(payment.id, 3, actor=ADMIN)
            assert (plan.status, plan.owed) == (PlanStatus.COMPLETED, Decimal(0))
            assert await service.credit_exposure(CUSTOMER) == 0
            with pytest.raises(ValidationError, match="installment 3 is paid"):
                await service.pay_installment(payment.id, 3, actor=ADMIN)
            assert [e.action for e in await service.audit_trail(payment.id)] == [
                "created", "confirmed", "installment_late", "late_fee_charged",
                "installment_paid", "refunded", "installment_paid",
            ]  # fmt: skip
            types = [e.type for e in await _events(service.store) if e.payment_id == payment.id]
            assert types == [
                "payment.created", "payment.confirmed", "plan.activated",
                "plan.installment_overdue", "plan.late_fee_charged", "plan.late_fee_charged",
                "plan.installment_paid", "payment.refunded", "plan.refund_allocated",
                "plan.installment_paid", "plan.completed",
            ]  # fmt: skip

    async def test_due_work_is_listed_in_one_order(self, backend: Backend) -> None:
        """Plans made at one moment fall due together: ``installments_due`` lists them
        soonest first, then by payment id and number (a limit takes the first of that
        order), ``plans_due`` and ``plans_to_remind`` by payment id; so workers on any
        store take the same work first."""
        now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        async with service_on(backend, clock=lambda: now) as service:
            made = []
            for _ in range(5):
                p = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
                await service.confirm_payment(p.id, actor=ADMIN)
                made.append(p.id)
            ids, store = sorted(made), service.store
            at = now + timedelta(days=30)  # installments 2 and 3 are due (14 and 28 days)
            due = await store.installments_due(at, 100)
            assert due == [(pid, number) for number in (2, 3) for pid in ids]
            assert await store.installments_due(at, 7) == due[:7]
            assert await store.plans_due(at, at) == ids
            assert await store.plans_to_remind(now, at, timedelta(days=3)) == ids

    async def test_the_worker_collects_installments_through_the_processor(
        self, backend: Backend
    ) -> None:
        """Due installments are collected once each through the processor; a declined one
        stays owed, goes overdue, and is recorded paid by hand."""
        now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
        processor = _simulated()
        async with service_on(backend, processor=processor, clock=lambda: now[0],
                              late_fees=AFTERPAY_AU) as service:  # fmt: skip
            worker = PaymentWorker(service)
            payment = await service.create_payment(
                CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await worker.run_once()
            assert (await service.plan(payment.id)).status is PlanStatus.ACTIVE
            assert await worker.run_plans() == 0  # nothing due yet
            now[0] += timedelta(days=14)
            assert await worker.run_plans() == 1
            assert await worker.run_plans() == 0  # queued once
            await worker.run_once()
            plan = await service.plan(payment.id)
            assert [i.status.value for i in plan.installments] == ["paid", "paid", "scheduled",
                                                                   "scheduled"]  # fmt: skip
            processor.success_rate = 0.0
            now[0] += timedelta(days=14)
            assert await worker.run_plans() == 1
            await worker.run_once()
            now[0] += timedelta(hours=1)
            assert await worker.run_plans() == 1  # not collected again: overdue, with a fee
            plan = await service.plan(payment.id)
            assert (plan.status, plan.installments[2].status.value) == (
                PlanStatus.DELINQUENT, "overdue",
            )  # fmt: skip
            await service.pay_installment(payment.id, 3, actor=ADMIN)
            processor.success_rate = 1.0
            now[0] += timedelta(days=14, hours=-1)  # installment 4's due date: not late yet
            await worker.run_plans()
            await worker.run_once()
            plan = await service.plan(payment.id)
            assert (plan.status, len(plan.late_fees)) == (PlanStatus.COMPLETED, 1)
            kinds = [(o.kind.value, o.status.value) for o in await service.operations(payment.id)]
            assert kinds == [
                ("installment", "succeeded"), ("installment", "succeeded"),
                ("installment", "declined"), ("installment", "succeeded"),
            ]  # fmt: skip
            assert processor.moved(payment.id) == Decimal("75.00")  # 3 paid by hand
            assert all(count == 1 for count in processor.ledger.values())
            assert len(processor.ledger) == 3

    async def test_a_person_waives_an_installment(self, backend: Backend) -> None:
        """A waived installment is no longer owed (kept, cancelled, to show what was
        forgiven); the reason is in the audit trail; waiving the rest completes the plan."""
        credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
        async with service_on(backend, credit=credit) as service:
            payment = await service.create_payment(CUSTOMER, "90.00", actor=USER,
                                                   plan=PlanTerms(installments=3))  # fmt: skip
            await service.confirm_payment(payment.id, actor=ADMIN)
            with pytest.raises(PermissionDenied):
                await service.waive_installment(payment.id, 2, actor=USER, reason="hardship")
            with pytest.raises(ValidationError):
                await service.waive_installment(payment.id, 2, actor=ADMIN, reason="")
            plan = await service.waive_installment(payment.id, 2, actor=ADMIN, reason="hardship")
            assert (plan.installments[1].status.value, plan.installments[1].amount) == (
                "cancelled", Decimal("30.00"),
            )  # fmt: skip
            assert await service.credit_exposure(CUSTOMER) == Decimal("30.00")
            plan = await service.waive_installment(payment.id, 3, actor=ADMIN, reason="hardship")
            assert (plan.status, plan.owed) == (PlanStatus.COMPLETED, Decimal(0))
            last = (await service.audit_trail(payment.id))[-1]
            assert (last.action, last.reason) == ("waived", "hardship")

    async def test_plans_end_with_their_payment_and_refuse_what_does_not_apply(
        self,
        backend: Backend,
    ) -> None:
        credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
        async with service_on(backend, credit=credit) as service:
            plain = await service.create_payment(CUSTOMER, "5.00", actor=USER)
            with pytest.raises(ValidationError, match="installments"):
                await service.plan(plain.id)
            with pytest.raises(PaymentNotFound):
                await service.plan(uuid7())
            dropped = await service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
            await service.cancel_payment(dropped.id, actor=ADMIN)
            assert (await service.plan(dropped.id)).status is PlanStatus.CANCELLED
            assert await service.credit_exposure(CUSTOMER) == Decimal("5.00")
            with pytest.raises(ValidationError):
                await service.create_payment(CUSTOMER, "0.03", actor=USER, plan=PlanTerms())
            with pytest.raises(ValidationError):
                await service.create_payment(CUSTOMER, "9.00", actor=USER, plan="pay-in-4")  # type: ignore[arg-type]

    async def test_store_keeps_a_plan_with_its_payment(self, backend: Backend) -> None:
        """A plan is written with its payment's creation and with each later change of it,
        installments and late fees included, and reads back exactly."""
        store = await backend.open_store()
        try:
            created = _created()
            payment = attrs.evolve(created.payment, has_plan=True)
            start = datetime(2026, 3, 2, 9, 30, 15, 123000, tzinfo=UTC)
            plan = plans.new_plan(payment.id, payment.amount, payment.currency, PlanTerms(), start)
            await store.add(attrs.evolve(created, payment=payment, plan=plan))
            assert await store.plan(payment.id) == plan
            assert (await store.get(payment.id) or payment).has_plan is True
            confirm = _changed(payment, "confirm")
            later, _, _ = plans.mark_overdue(
                plans.activate(plan, confirm.payment.updated_at),
                LateFeePolicy(first_fee=Decimal("5.00")),
                start + timedelta(days=15),
            )
            assert await store.apply(
                attrs.evolve(confirm, plan=later), expected=PaymentStatus.PENDING
            )
            assert await store.plan(payment.id) == later
            assert len(later.late_fees) == 1
            assert later.status is PlanStatus.DELINQUENT
            assert await store.plan(_created().payment.id) is None
        finally:
            await store.aclose()

    async def test_a_payment_is_read_with_its_plan_as_of_one_moment(self, backend: Backend) -> None:
        """``get_with_plan`` reads a payment with its plan (None without one, nothing
        for a missing payment); while installments are paid one by one, each read's plan
        is the one written with the version of the payment read with it."""
        async with service_on(backend) as service:
            plain = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            payment = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
            payment = await service.confirm_payment(payment.id, actor=ADMIN)
            store = service.store
            assert await store.get_with_plan(plain.id) == (plain, None)
            assert await store.get_with_plan(uuid7()) is None
            assert await store.get_with_plan(payment.id) == (
                payment, await store.plan(payment.id),
            )  # fmt: skip
            confirmed = payment.version
            reads: list[tuple[int, int]] = []

            async def read() -> None:
                while len(reads) < 200:
                    found = await store.get_with_plan(payment.id)
                    assert found is not None
                    payment_now, plan = found
                    assert plan is not None
                    paid = sum(not i.unpaid for i in plan.installments)
                    reads.append((payment_now.version, paid))
                    await asyncio.sleep(0)

            async def pay() -> None:
                for number in (2, 3, 4):
                    await service.pay_installment(payment.id, number, actor=ADMIN)

            await asyncio.gather(read(), pay())
            # Installment 1 is paid by the confirmation; each later one moves the
            # version by one.
            assert all(paid == 1 + version - confirmed for version, paid in reads)
