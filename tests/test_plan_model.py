"""Model-based tests of plans and credit. Through the blocking twin: after every step of
random creations (with and without plans, some refused by the limit), confirmations,
cancellations, installments paid or waived, charge-offs (and payments after them, which
are recoveries), and refunds, each customer's stored exposure equals the sum it stands
for and never passes the limit. Through a processor and its worker, charge-offs among
them: after every step, each plan's money adds up against what the processor moved.
Both: after every step, the books agree with the payments, the plans and the processor
(``verify`` finds nothing; receivables, payable and clearing are what they stand for)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

import paymentorch as po
from paymentorch.clock import ManualClock
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.plans import refunded_total
from paymentorch.testing import SimulatedProcessor
from paymentorch.testing._money import books_problems, plan_money_problems

pytestmark = pytest.mark.once  # long stateful models

ADMIN = po.Actor("ops", roles={po.Role.ADMIN})
CUSTOMERS = ["ABCD-00001", "ABCD-00002"]
LIMIT = Decimal("600.00")
URLS: list[Any] = []


class PlanMachine(RuleBasedStateMachine):
    payments = Bundle("payments")

    @initialize()
    def open(self) -> None:
        credit = po.CreditPolicy(limit=LIMIT, currency="USD")
        self.service = po.open_sync_service(URLS[-1](), credit=credit)
        self.made: list[UUID] = []

    def teardown(self) -> None:
        if hasattr(self, "service"):
            self.service.close()

    @rule(
        target=payments,
        customer=st.sampled_from(CUSTOMERS),
        amount=st.sampled_from(["40.00", "99.99", "250.00", "400.01"]),
        plan=st.booleans(),
    )
    def create(self, customer: str, amount: str, plan: bool) -> Any:
        before = self.service.credit_exposure(customer)
        try:
            payment = self.service.create_payment(
                customer, amount, actor=ADMIN, plan=po.PlanTerms() if plan else None
            )
        except po.CreditLimitExceeded as exc:
            assert exc.exposure == before
            assert before + Decimal(amount) > LIMIT
            return multiple()  # nothing to add to the bundle
        assert before + Decimal(amount) <= LIMIT
        self.made.append(payment.id)
        return payment.id

    @rule(pid=payments, action=st.sampled_from(["confirm", "cancel", "fail"]))
    def change(self, pid: UUID, action: str) -> None:
        try:
            if action == "fail":
                self.service.fail_payment(pid, reason="declined", actor=ADMIN)
            else:
                getattr(self.service, f"{action}_payment")(pid, actor=ADMIN)
        except po.InvalidTransition:
            pass

    @rule(pid=payments, number=st.integers(1, 4), waive=st.booleans())
    def settle_installment(self, pid: UUID, number: int, waive: bool) -> None:
        try:
            if waive:
                self.service.waive_installment(pid, number, actor=ADMIN, reason="hardship")
            else:
                self.service.pay_installment(pid, number, actor=ADMIN)
        except po.ValidationError:
            pass  # no plan, not running, or not owed

    @rule(pid=payments)
    def charge_off(self, pid: UUID) -> None:
        with contextlib.suppress(po.InvalidTransition, po.ValidationError):  # not running
            self.service.charge_off(pid, actor=ADMIN, reason="past due")

    @rule(pid=payments, share=st.sampled_from([Decimal("0.1"), Decimal("0.5"), Decimal(1)]))
    def refund(self, pid: UUID, share: Decimal) -> None:
        payment = self.service.get_payment(pid)
        amount = (payment.refundable * share).quantize(Decimal("0.01"))
        if payment.status is not po.PaymentStatus.CONFIRMED or amount <= 0:
            return
        self.service.refund_payment(pid, amount, actor=ADMIN)

    @invariant()
    def exposure_is_what_is_owed(self) -> None:
        if not hasattr(self, "service"):
            return
        owed = dict.fromkeys(CUSTOMERS, Decimal(0))
        for pid in self.made:
            payment = self.service.get_payment(pid)
            plan = self.service.plan(pid) if payment.has_plan else None
            owed[payment.customer_id] += exposure_of(payment, plan)
            if plan is not None and payment.status in (
                po.PaymentStatus.CONFIRMED, po.PaymentStatus.REFUNDED,
            ):  # fmt: skip
                assert plan.owed == sum(i.amount for i in plan.installments if i.unpaid)
                waived = sum(i.amount for i in plan.installments if i.status.value == "cancelled")
                assert refunded_total(plan) + waived >= payment.refunded_amount
        for customer, amount in owed.items():
            assert self.service.credit_exposure(customer) == amount
            assert amount <= LIMIT

    @invariant()
    def books_agree(self) -> None:
        if not hasattr(self, "service"):
            return
        payments = [self.service.get_payment(pid) for pid in self.made]
        plans = {p.id: self.service.plan(p.id) if p.has_plan else None for p in payments}
        report = self.service.verify()
        found = books_problems(payments, plans=plans, operations=[], movements={},
                               balance=self.service.balance, report=report)  # fmt: skip
        assert found == []


@pytest.fixture(params=["memory", pytest.param("sqlite", marks=pytest.mark.sqlite)])
def machine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    runs = itertools.count()
    URLS.append(
        (lambda: "memory://")
        if request.param == "memory"
        else (lambda: f"sqlite:///{tmp_path}/plans-{next(runs)}.db")
    )
    yield
    URLS.pop()


def test_exposure_follows_every_step(machine_url: None) -> None:
    runner = PlanMachine.TestCase
    runner.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
    runner().runTest()


class PlanMoneyMachine(RuleBasedStateMachine):
    """Plans whose money moves through a simulated processor, driven by a worker on a
    clock the machine moves: collections declined (soft, retried on the ladder, or hard,
    stopping collection) or with lost answers, collection resumed, refunds racing them,
    installments paid or waived by hand, late fees, charge-offs by hand and by the policy.
    After every step each plan's money adds up against what the processor really moved,
    no plan has two collections under way, and exposure is what is owed."""

    payments = Bundle("payments")

    @initialize()
    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.processor = SimulatedProcessor(latency=(0, 0), success_rate=1.0, seed=3)
        credit = po.CreditPolicy(limit=LIMIT, currency="USD")
        fees = po.LateFeePolicy(Decimal(10), Decimal(7), cap_percent=25, currency="USD")
        day = timedelta(days=1)
        collections = po.CollectionPolicy(retries=(day, 3 * day), charge_off_after=40 * day)
        self.service = self._run(
            po.open_service(URLS[-1](), processor=self.processor, clock=self.clock,
                            credit=credit, late_fees=fees, collections=collections,
                            create_schema=True)
        )  # fmt: skip
        self.worker = po.PaymentWorker(self.service, batch_size=1000)  # all due, every time
        self.made: list[UUID] = []

    def _run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        if hasattr(self, "service"):
            self._run(self.service.aclose())
            self.loop.close()

    @rule(
        target=payments,
        customer=st.sampled_from(CUSTOMERS),
        amount=st.sampled_from(["40.00", "99.99", "250.00"]),
        method=st.sampled_from(["automatic", "manual"]),
    )
    def create(self, customer: str, amount: str, method: str) -> Any:
        try:
            payment = self._run(
                self.service.create_payment(customer, amount, actor=ADMIN, plan=po.PlanTerms(),
                                            capture_method=method)
            )  # fmt: skip
        except po.CreditLimitExceeded:
            return multiple()
        self.made.append(payment.id)
        return payment.id

    @rule(
        success=st.booleans(), lost=st.sampled_from([False, False, True]), moved=st.booleans(),
        code=st.sampled_from(["insufficient_funds", "card_stolen"]),
    )  # fmt: skip
    def processor_mood(self, success: bool, lost: bool, moved: bool, code: str) -> None:
        # Every answer for a while is the same: which operation gets which answer must not
        # depend on the order the worker happens to call the processor in (operations
        # made in the same millisecond have no fixed order), or a replay of the same steps
        # would move other money and hypothesis could not shrink it.
        processor = self.processor
        processor.success_rate, processor.timeout_rate = float(success), float(lost)
        processor.executed_on_timeout = float(moved)
        processor._codes, processor._weights = [code], [1.0]  # a soft or a hard decline

    @rule()
    def work(self) -> None:
        self._run(self.worker.run_once())

    @rule(days=st.sampled_from([0, 1, 3, 5, 14, 30]))
    def tick(self, days: int) -> None:
        self.clock.advance(timedelta(days=days, seconds=6))  # lookups fall due too
        self._run(self.worker.run_plans())

    @rule(pid=payments)
    def capture(self, pid: UUID) -> None:
        with contextlib.suppress(po.InvalidTransition):
            self._run(self.service.capture_payment(pid, actor=ADMIN))

    @rule(pid=payments, share=st.sampled_from([Decimal("0.1"), Decimal("0.5"), Decimal(1)]))
    def refund(self, pid: UUID, share: Decimal) -> None:
        payment = self._run(self.service.get_payment(pid))
        amount = (payment.refundable * share).quantize(Decimal("0.01"))
        if payment.status is po.PaymentStatus.CONFIRMED and amount > 0:
            self._run(self.service.refund_payment(pid, amount, actor=ADMIN))

    @rule(pid=payments, number=st.integers(2, 4), waive=st.booleans())
    def by_hand(self, pid: UUID, number: int, waive: bool) -> None:
        with contextlib.suppress(po.ValidationError):  # not owed, not running, or busy
            if waive:
                self._run(
                    self.service.waive_installment(pid, number, actor=ADMIN, reason="hardship")
                )
            else:
                self._run(self.service.pay_installment(pid, number, actor=ADMIN))

    @rule(pid=payments)
    def charge_off(self, pid: UUID) -> None:
        with contextlib.suppress(po.InvalidTransition, po.ValidationError):  # or money moves
            self._run(self.service.charge_off(pid, actor=ADMIN, reason="past due"))

    @rule(pid=payments)
    def resume(self, pid: UUID) -> None:
        with contextlib.suppress(po.InvalidTransition):  # no running plan, or not stopped
            self._run(self.service.resume_collection(pid, actor=ADMIN))

    @invariant()
    def money_adds_up(self) -> None:
        if not hasattr(self, "service"):
            return
        movements = self.processor.movements()
        assert all(count == 1 for count in self.processor.ledger.values())
        owed = dict.fromkeys(CUSTOMERS, Decimal(0))
        payments, plans, every = [], {}, []
        for pid in self.made:
            payment = self._run(self.service.get_payment(pid))
            plan = self._run(self.service.plan(pid))
            operations = self._run(self.service.operations(pid))
            assert plan_money_problems(plan, operations, movements) == []
            # Nothing here needs a person: no collection ever races a refund.
            assert po.OperationStatus.NEEDS_ATTENTION not in {o.status for o in operations}
            collecting = [
                o
                for o in operations
                if o.kind is po.OperationKind.INSTALLMENT
                and o.status in (po.OperationStatus.PENDING, po.OperationStatus.UNKNOWN)
            ]
            assert len(collecting) <= 1  # one collection of a plan at a time  # fmt: skip
            owed[payment.customer_id] += exposure_of(payment, plan)
            payments.append(payment)
            plans[pid] = plan
            every += operations
        for customer, amount in owed.items():
            assert self._run(self.service.credit_exposure(customer)) == amount
        report = self._run(self.service.verify())
        balance = lambda account: self._run(self.service.balance(account))  # noqa: E731
        found = books_problems(payments, plans=plans, operations=every, movements=movements,
                               balance=balance, report=report)  # fmt: skip
        assert found == []


def test_money_adds_up_after_every_step(machine_url: None) -> None:
    runner = PlanMoneyMachine.TestCase
    runner.settings = settings(max_examples=60, stateful_step_count=50, deadline=None)
    runner().runTest()
