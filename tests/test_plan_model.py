"""A model-based test of plans and credit, through the blocking twin: after every step
of random creations (with and without plans, some refused by the limit),
confirmations, cancellations, installments paid or waived, and refunds, each customer's
stored exposure equals the sum it stands for and never passes the limit."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
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
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.plans import refunded_total

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
