"""The contract's charge-off tests: a plan given up on by hand is written off whole,
collected and charged no more, still counted as exposure, and recovered by later
payments; the books agree at every step."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from paymentorch.domain import (
    CreditLimitExceeded,
    InvalidTransition,
    PaymentNotFound,
    PaymentStatus,
    PermissionDenied,
    ValidationError,
    plans,
    uuid7,
)
from paymentorch.domain.actions import allowed_actions
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.ledger import Account, AccountKind
from paymentorch.domain.plans import PlanStatus, PlanTerms
from paymentorch.service import PaymentService
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import (
    ADMIN,
    CUSTOMER,
    USER,
    _changed,
    _created,
    _events,
)
from paymentorch.testing.contract.books import _agree, _lines
from paymentorch.testing.contract.money import FEES, Clock, _processor
from paymentorch.worker import PaymentWorker

REASON = "120 days past due"
RECEIVABLE = Account(AccountKind.RECEIVABLE, CUSTOMER, "USD")
WRITEOFFS = Account(AccountKind.WRITEOFFS, "", "USD")


async def _confirmed_plan(service: PaymentService, amount: str = "100.00") -> Any:
    order = await service.create_payment(CUSTOMER, amount, actor=USER, plan=PlanTerms())
    return await service.confirm_payment(order.id, actor=ADMIN)


async def _unchanged(service: PaymentService, payment_id: Any) -> tuple[Any, ...]:
    """What a refused charge-off must leave as it was."""
    return (
        await service.get_payment(payment_id),
        await service.plan(payment_id),
        await service.journal(payment_id),
        await service.audit_trail(payment_id),
    )


class TestChargeOff:
    """Charge-off by hand: ``charge_off`` writes a plan off in one guarded change."""

    pytestmark = pytest.mark.asyncio

    async def test_a_charge_off_writes_off_exactly_what_is_owed(self, backend: Backend) -> None:
        """Every unpaid installment, due or not, and every unpaid fee is written off in one
        balanced ``write_off`` entry: the receivable nets to zero; the reason is audited and
        ``plan.charged_off`` says what a notice needs."""
        clock = Clock()
        async with service_on(backend, clock=clock, late_fees=FEES) as service:
            order = await _confirmed_plan(service)
            clock.advance(timedelta(days=15))
            assert await service.process_overdue() == 1  # installment 2 late: a 10.00 fee
            await _events(service.store)
            plan = await service.charge_off(order.id, actor=ADMIN, reason=REASON)
            assert plan.status is PlanStatus.CHARGED_OFF
            assert (plan.owed, plan.fees_owed) == (Decimal("75.00"), Decimal("10.00"))
            assert await service.plan(order.id) == plan
            entry = (await service.journal(order.id))[-1]
            assert (entry.kind, entry.operation_id) == ("write_off", None)
            assert _lines(entry) == {("writeoffs", "", "85.00"),
                                     ("receivable", CUSTOMER, "-85.00")}  # fmt: skip
            assert await service.balance(RECEIVABLE) == 0
            assert await service.balance(WRITEOFFS) == Decimal("85.00")
            last = (await service.audit_trail(order.id))[-1]
            assert (last.action, last.reason, last.actor_id) == ("charged_off", REASON, ADMIN.id)
            assert (last.from_status, last.to_status) == (PaymentStatus.CONFIRMED,) * 2
            (event,) = await _events(service.store)
            assert event.type == "plan.charged_off"
            assert event.payment["charge_off"] == {"amount": "85.00", "currency": "USD"}
            assert event.payment["customer_id"] == CUSTOMER
            assert (event.payment["id"], event.payment["plan"]["status"]) == (
                str(order.id), "charged_off",
            )  # fmt: skip
            await _agree(service, order.id)

    async def test_only_a_running_plan_is_charged_off(self, backend: Backend) -> None:
        """A second charge-off, or one of a payment without a running plan (pending,
        completed, cancelled, none at all), is ``InvalidTransition`` and changes nothing;
        a user may not charge off, and no payment is not found."""
        async with service_on(backend) as service:
            order = await _confirmed_plan(service)
            with pytest.raises(PermissionDenied):
                await service.charge_off(order.id, actor=USER, reason=REASON)
            await service.charge_off(order.id, actor=ADMIN, reason=REASON)
            pending = await service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
            completed = await service.create_payment(CUSTOMER, "60.00", actor=USER,
                                                     plan=PlanTerms(installments=2))  # fmt: skip
            await service.confirm_payment(completed.id, actor=ADMIN)
            await service.pay_installment(completed.id, 2, actor=ADMIN)
            cancelled = await service.create_payment(CUSTOMER, "40.00", actor=USER,
                                                     plan=PlanTerms())  # fmt: skip
            await service.cancel_payment(cancelled.id, actor=ADMIN)
            plain = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            await service.confirm_payment(plain.id, actor=ADMIN)
            for payment in (order, pending, completed, cancelled):
                before = await _unchanged(service, payment.id)
                with pytest.raises(InvalidTransition):
                    await service.charge_off(payment.id, actor=ADMIN, reason=REASON)
                assert await _unchanged(service, payment.id) == before
            with pytest.raises(InvalidTransition):
                await service.charge_off(plain.id, actor=ADMIN, reason=REASON)
            with pytest.raises(PaymentNotFound):
                await service.charge_off(uuid7(), actor=ADMIN, reason=REASON)

    async def test_a_bad_reason_changes_nothing(self, backend: Backend) -> None:
        """The reason is required, 1 to 500 characters: anything else is a
        ``ValidationError`` naming it, and the plan runs on as it was."""
        async with service_on(backend) as service:
            order = await _confirmed_plan(service)
            before = await _unchanged(service, order.id)
            for reason in (None, "", "   ", "x" * 501, 42):
                with pytest.raises(ValidationError) as refused:
                    await service.charge_off(order.id, actor=ADMIN, reason=reason)  # type: ignore[arg-type]
                assert [e.field for e in refused.value.errors] == ["reason"]
            assert await _unchanged(service, order.id) == before
            plan = await service.charge_off(order.id, actor=ADMIN, reason="x" * 500)
            assert plan.status is PlanStatus.CHARGED_OFF

    async def test_refused_while_money_of_the_plan_is_under_way(self, backend: Backend) -> None:
        """While an installment's collection is under way the plan is not charged off (a
        ``ValidationError``, and not offered); once it settled, it is."""
        clock = Clock()
        async with service_on(backend, processor=_processor(), clock=clock) as service:
            worker = PaymentWorker(service)
            order = await service.create_payment(
                CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await worker.run_once()  # installment 1 collected: the plan runs
            clock.advance(timedelta(days=14))
            assert await worker.run_plans() == 1  # installment 2's collection queued
            payment = await service.get_payment(order.id)
            operations = await service.operations(order.id)
            plan = await service.plan(order.id)
            assert "charge_off" not in allowed_actions(payment, operations=operations, plan=plan)
            before = await _unchanged(service, order.id)
            with pytest.raises(ValidationError, match="under way"):
                await service.charge_off(order.id, actor=ADMIN, reason=REASON)
            assert await _unchanged(service, order.id) == before
            await worker.run_once()  # collected: nothing under way
            payment = await service.get_payment(order.id)
            operations = await service.operations(order.id)
            plan = await service.plan(order.id)
            assert "charge_off" in allowed_actions(payment, operations=operations, plan=plan)
            plan = await service.charge_off(order.id, actor=ADMIN, reason=REASON)
            assert plan.owed == Decimal("50.00")

    async def test_the_worker_leaves_a_charged_off_plan_alone(self, backend: Backend) -> None:
        """Collection and late fees stop: the plans tick queues no collection and charges
        no fee for a charged-off plan, however late its installments fall; the aging
        report and the delinquent plans leave it out."""
        clock = Clock()
        processor = _processor()
        async with service_on(backend, processor=processor, clock=clock,
                              late_fees=FEES) as service:  # fmt: skip
            worker = PaymentWorker(service)
            order = await service.create_payment(
                CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            await worker.run_once()
            await service.charge_off(order.id, actor=ADMIN, reason=REASON)
            before = await _unchanged(service, order.id)
            for _ in range(4):
                clock.advance(timedelta(days=15))
                assert await worker.run_plans() == 0
                await worker.run_once()
            assert await _unchanged(service, order.id) == before
            assert len(await service.operations(order.id)) == 1  # installment 1's alone
            assert (await service.plan(order.id)).late_fees == ()
            report = await service.aging_report()  # nor is it watched as a late one
            assert sum(b.count for b in report.buckets.values()) == 0
            assert (await service.delinquent_plans()).items == []
            await _agree(service, order.id, processors=[processor])

    async def test_exposure_still_counts_a_charged_off_plan(self, backend: Backend) -> None:
        """The customer still owes what was written off: its exposure keeps it, so no new
        credit is granted on it."""
        credit = CreditPolicy(limit=Decimal("100.00"), currency="USD")
        async with service_on(backend, credit=credit) as service:
            order = await _confirmed_plan(service)
            assert await service.credit_exposure(CUSTOMER) == Decimal("75.00")
            await service.charge_off(order.id, actor=ADMIN, reason=REASON)
            assert await service.credit_exposure(CUSTOMER) == Decimal("75.00")
            with pytest.raises(CreditLimitExceeded):
                await service.create_payment(CUSTOMER, "30.00", actor=USER)
            assert await service.rebuild_exposure() == 0
            await _agree(service, order.id)

    async def test_a_payment_after_a_charge_off_is_a_recovery(self, backend: Backend) -> None:
        """``pay_installment`` on a charged-off plan posts a ``recovery`` (clearing to
        writeoffs, the receivable untouched) and lowers exposure; the plan stays charged
        off, its installments are not waived, and the books agree throughout."""
        clock = Clock()
        credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
        async with service_on(backend, clock=clock, credit=credit, late_fees=FEES) as service:
            order = await _confirmed_plan(service)
            clock.advance(timedelta(days=15))
            await service.process_overdue()
            await service.charge_off(order.id, actor=ADMIN, reason=REASON)
            payment = await service.get_payment(order.id)
            offered = allowed_actions(payment, plan=await service.plan(order.id))
            assert offered == ["refund", "pay_installment"]
            plan = await service.pay_installment(order.id, 2, actor=ADMIN)  # with its fee
            assert plan.status is PlanStatus.CHARGED_OFF
            entry = (await service.journal(order.id))[-1]
            assert (entry.kind, _lines(entry)) == ("recovery", {
                ("clearing", "manual", "35.00"), ("writeoffs", "", "-35.00"),
            })  # fmt: skip
            assert await service.balance(RECEIVABLE) == 0
            assert await service.credit_exposure(CUSTOMER) == Decimal("50.00")
            last = (await service.audit_trail(order.id))[-1]
            assert last.action == "recovered"
            with pytest.raises(ValidationError, match="charged_off"):
                await service.waive_installment(order.id, 3, actor=ADMIN, reason="hardship")
            await _agree(service, order.id)
            for number in (3, 4):
                plan = await service.pay_installment(order.id, number, actor=ADMIN)
            assert (plan.status, plan.owed) == (PlanStatus.CHARGED_OFF, Decimal(0))
            assert await service.credit_exposure(CUSTOMER) == 0
            assert await service.balance(WRITEOFFS) == 0  # every cent recovered
            assert (await service.verify()).ok
            await _agree(service, order.id)

    async def test_store_keeps_a_charged_off_plan(self, backend: Backend) -> None:
        """A charged-off plan is written with its payment's change and reads back
        exactly; the store's plans tick finds nothing due on it."""
        store = await backend.open_store()
        try:
            created = _created()
            payment = attrs.evolve(created.payment, has_plan=True)
            start = created.payment.created_at - timedelta(days=60)
            plan = plans.new_plan(payment.id, payment.amount, payment.currency, PlanTerms(), start)
            await store.add(attrs.evolve(created, payment=payment, plan=plan))
            confirm = _changed(payment, "confirm")
            gone = plans.charge_off(plans.activate(plan, confirm.payment.updated_at))
            assert await store.apply(attrs.evolve(confirm, plan=gone),
                                     expected=PaymentStatus.PENDING)  # fmt: skip
            assert await store.plan(payment.id) == gone
            now = confirm.payment.updated_at
            assert await store.plans_due(now, now) == []
            assert await store.installments_due(now, 10) == []
        finally:
            await store.aclose()
