"""1,000 pay-in-4 plans through eight weeks on a clock the test moves: every installment
collected through the processor (some declined, some answers lost and looked up later),
late payments by hand, plans charged off three weeks late and some recovered, refunds
racing collections, cancellations; every invariant is checked at the end, and the money
of every plan against what the processor really moved."""

from __future__ import annotations

import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import paymentorch as po
from paymentorch.clock import ManualClock
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.plans import InstallmentStatus, refunded_total
from paymentorch.testing import SimulatedProcessor
from paymentorch.testing._money import plan_money_problems, service_books_problems

PLANS = int(os.environ.get("PAYMENTORCH_SIMULATION_PLANS", "1000"))
ADMIN = po.Actor("ops", roles={po.Role.ADMIN})
CUSTOMERS = [f"SIMU-{n:05d}" for n in range(60)]
LIMIT = Decimal("5000.00")
AFTERPAY_AU = po.LateFeePolicy(
    first_fee=Decimal(10), repeat_fee=Decimal(7), cap_percent=25, cap_amount=Decimal(68),
    single_fee_below=Decimal(40), currency="USD",
)  # fmt: skip
CHARGE_OFF = timedelta(days=21)
"""How late an installment is when a person may give up on its plan."""


@pytest.fixture(params=["memory", pytest.param("sqlite", marks=pytest.mark.sqlite),
                        pytest.param("postgres", marks=pytest.mark.postgres)])  # fmt: skip
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/simulation.db"
    found: str = request.getfixturevalue("empty_postgres_url")
    return found


async def test_eight_weeks_of_plans_keep_every_invariant(url: str) -> None:
    rng = random.Random(8)
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    processor = SimulatedProcessor(
        success_rate=0.93, latency=(0, 0), timeout_rate=0.04, executed_on_timeout=0.5, seed=8
    )
    credit = po.CreditPolicy(limit=LIMIT, currency="USD")
    options = {"processor": processor, "clock": clock, "credit": credit,
               "late_fees": AFTERPAY_AU, "create_schema": True}  # fmt: skip
    async with await po.open_service(url, **options) as service:
        worker = po.PaymentWorker(service, batch_size=100)
        made, refused = await _create(service, rng)
        figures: Counter[str] = Counter()
        for _day in range(56):
            clock.advance(timedelta(days=1))
            await worker.run_plans()
            while await worker.run_once():
                pass
            await _people_act(service, rng, made, figures)
        for _ in range(3):  # the last day's refunds, and lookups of answers lost on the way
            clock.advance(timedelta(hours=12))  # (a lookup is due a while after the loss)
            while await worker.run_once():
                pass
        found = await _check(service, made, processor) + figures
    assert refused > 0  # the credit limit was reached, and held
    backend = url.split(":", maxsplit=1)[0]
    print(f"\nsimulation on {backend}: {len(made)} plans, {refused} refused, {dict(found)}")
    assert found["looked up"] > 0  # answers were lost and found again
    assert found["refunds that waited"] > 0  # refunds raced collections under way
    plans = ("completed", "cancelled", "delinquent", "active", "charged_off")
    assert sum(found[status] for status in plans) == len(made)
    assert found["completed"] > len(made) // 2
    assert found["charged_off"] > 0


async def _create(service: po.PaymentService, rng: random.Random) -> tuple[list[Any], int]:
    made, refused = [], 0
    for _ in range(PLANS):
        amount = Decimal(rng.randrange(2000, 60000)).scaleb(-2)  # 20.00 to 599.99
        try:
            payment = await service.create_payment(
                rng.choice(CUSTOMERS), amount, actor=ADMIN, capture_method="automatic",
                plan=po.PlanTerms(refund_allocation=rng.choice(["last_first", "even"])),
            )  # fmt: skip
        except po.CreditLimitExceeded:
            refused += 1
            continue
        if rng.random() < 0.03:  # changed their mind before the charge went out
            await service.cancel_payment(payment.id, actor=ADMIN, reason="changed mind")
        made.append(payment)
    return made, refused


async def _people_act(
    service: po.PaymentService, rng: random.Random, made: list[Any], figures: Counter[str]
) -> None:
    # Some customers each day, and every one whose collection's answer was lost today: a
    # refund on such a plan races a collection under way (it waits for its answer).
    lost = await service.store.operations_with_status(po.OperationStatus.UNKNOWN, limit=1000)
    racing = {op.payment_id for op in lost}
    today = rng.sample(made, k=min(len(made), 40))
    today += [p for p in made if p.id in racing and p not in today]
    for payment in today:
        plan = await service.plan(payment.id)
        late = [i for i in plan.installments if i.status is InstallmentStatus.OVERDUE]
        operations = await service.operations(payment.id)
        answer_lost = any(o.status is po.OperationStatus.UNKNOWN for o in operations)
        if plan.status is po.PlanStatus.CHARGED_OFF:
            unpaid = [i for i in plan.installments if i.unpaid]
            if unpaid and rng.random() < 0.3:  # the customer pays after all: a recovery
                await service.pay_installment(payment.id, unpaid[0].number, actor=ADMIN)
                figures["recoveries"] += 1
        elif late and service.clock() - late[0].due_at > CHARGE_OFF and rng.random() < 0.3:
            try:
                await service.charge_off(payment.id, actor=ADMIN, reason="three weeks late")
            except po.ValidationError as exc:  # money of the plan under way: come back later
                assert {e.code for e in exc.errors} == {"busy"}
        elif late and rng.random() < 0.5:  # a late payment, made by hand
            try:
                await service.pay_installment(payment.id, late[0].number, actor=ADMIN)
            except po.ValidationError as exc:  # a refund is under way: come back later
                assert {e.code for e in exc.errors} == {"busy"}
        elif plan.status in (po.PlanStatus.ACTIVE, po.PlanStatus.DELINQUENT,
                             po.PlanStatus.COMPLETED) and (
            rng.random() < 0.05 or (answer_lost and rng.random() < 0.5)
        ):  # fmt: skip
            current = await service.get_payment(payment.id)
            if current.refundable > 0:
                share = Decimal(rng.choice([10, 25, 50, 100])) / 100
                amount = (current.refundable * share).quantize(Decimal("0.01"))
                if amount > 0:
                    refund = await service.refund_payment(payment.id, amount, actor=ADMIN)
                    if refund.status is po.OperationStatus.PENDING and refund.due_at is None:
                        figures["refunds that waited"] += 1


async def _check(
    service: po.PaymentService, made: list[Any], processor: SimulatedProcessor
) -> Counter[str]:
    statuses: Counter[str] = Counter()
    owed: dict[str, Decimal] = {}
    for payment in made:
        current = await service.get_payment(payment.id)
        plan = await service.plan(payment.id)
        statuses[plan.status.value] += 1
        unit = Decimal("0.01")
        assert all(i.amount >= 0 for i in plan.installments)
        assert all(Decimal(0) <= i.refunded_amount <= i.amount for i in plan.installments)
        assert all(i.amount.as_tuple().exponent == -2 for i in plan.installments if i.amount)
        fees = sum((f.amount for f in plan.late_fees), Decimal(0))
        assert fees <= min(plan.order_amount / 4, Decimal(68)) + unit
        if plan.order_amount < 40:
            assert len(plan.late_fees) <= 1
        if (
            current.status is po.PaymentStatus.CONFIRMED
            or current.status is po.PaymentStatus.REFUNDED
        ):
            assert refunded_total(plan) == current.refunded_amount
            unpaid = [i for i in plan.installments if i.unpaid]
            overdue = [i for i in unpaid if i.status is InstallmentStatus.OVERDUE]
            if plan.status is po.PlanStatus.CHARGED_OFF:
                wanted = "charged_off"  # for good, recovered or not
            elif not unpaid:
                wanted = (
                    "cancelled" if current.refunded_amount == plan.order_amount else "completed"
                )
            else:
                wanted = "delinquent" if overdue else "active"
            assert plan.status.value == wanted, (current, plan)
        elif current.status in (po.PaymentStatus.FAILED, po.PaymentStatus.CANCELLED):
            assert plan.status is po.PlanStatus.CANCELLED
            assert all(not i.unpaid for i in plan.installments)
        owed[current.customer_id] = owed.get(current.customer_id, Decimal(0)) + exposure_of(
            current, plan
        )
        operations = await service.operations(payment.id)
        keys = [o.idempotency_key for o in operations if o.kind is po.OperationKind.INSTALLMENT]
        assert len(keys) == len(set(keys))  # each installment collected once at most
        # Nothing left unsettled, nothing for a person: no collection ever raced a refund.
        assert {op.status for op in operations} <= {
            po.OperationStatus.SUCCEEDED, po.OperationStatus.DECLINED,
        }, [(o.kind, o.status, o.error, o.due_at, o.lookups) for o in operations]  # fmt: skip
        if payment.status is not po.PaymentStatus.CANCELLED:
            assert plan_money_problems(plan, operations, processor.movements()) == []
        _count(statuses, plan, operations)
    for customer, amount in owed.items():
        assert await service.credit_exposure(customer) == amount
        assert amount <= LIMIT
    assert all(count == 1 for count in processor.ledger.values())
    assert await service_books_problems(service, [p.id for p in made], [processor]) == []
    moved = sum((m.amount for m in processor.movements().values()), Decimal(0))
    statuses["processor net"] = int(moved)
    return statuses


def _count(statuses: Counter[str], plan: po.Plan, operations: list[po.Operation]) -> None:
    """The simulation's figures, for the printed summary."""
    for op in operations:
        if op.kind is po.OperationKind.INSTALLMENT:
            state = "collected" if op.status is po.OperationStatus.SUCCEEDED else "declined"
            statuses[f"installments {state}"] += 1
        if op.lookups:
            statuses["looked up"] += 1
        if op.kind is po.OperationKind.REFUND:
            through = "processor" if op.processor else "inline"
            statuses[f"refunds {through}"] += 1
    statuses["fees charged"] += len(plan.late_fees)
    statuses["fees paid"] += sum(1 for f in plan.late_fees if f.paid_at)
    statuses["fees waived"] += sum(1 for f in plan.late_fees if f.waived_at)
