"""A year of installment plans on a clock the test moves, with collections on: plans
made each day for eight months (pay-in-4 every two weeks, and six monthly), every
installment collected through the processor (declines soft and hard with codes, answers
lost and looked up later), retried on the ladder, reminded before due dates, charged
fees, charged off at 120 days and some recovered; late payments by hand, collection
resumed by a person, refunds racing collections, cancellations. Every invariant is
checked at the end, and the money of every plan against what the processor really moved
and the books."""

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
from paymentorch.domain.actions import IN_FLIGHT
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.plans import RUNNING, InstallmentStatus, refunded_total
from paymentorch.testing import SimulatedProcessor
from paymentorch.testing._money import plan_money_problems, service_books_problems

PLANS = int(os.environ.get("PAYMENTORCH_SIMULATION_PLANS", "1000"))
DAYS = int(os.environ.get("PAYMENTORCH_SIMULATION_DAYS", "365"))
MAKING = DAYS * 2 // 3
"""Plans are made during the first two thirds of the run."""
ADMIN = po.Actor("ops", roles={po.Role.ADMIN})
CUSTOMERS = [f"SIMU-{n:05d}" for n in range(40)]
LIMIT = Decimal("1000.00")
AFTERPAY_AU = po.LateFeePolicy(
    first_fee=Decimal(10), repeat_fee=Decimal(7), cap_percent=25, cap_amount=Decimal(68),
    single_fee_below=Decimal(40), currency="USD",
)  # fmt: skip
COLLECTIONS = po.CollectionPolicy()  # retries after 1, 3 and 7 days; a reminder 3 days before
DECLINES = {"insufficient_funds": 6, "do_not_honor": 2, "card_stolen": 1, "account_closed": 1}
BY_HAND = timedelta(days=60)
"""How late a plan is when a person may give up on it before the policy does."""


@pytest.fixture(params=["memory", pytest.param("sqlite", marks=pytest.mark.sqlite),
                        pytest.param("postgres", marks=pytest.mark.postgres)])  # fmt: skip
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/simulation.db"
    found: str = request.getfixturevalue("empty_postgres_url")
    return found


@pytest.mark.heavy
async def test_a_year_of_plans_keeps_every_invariant(url: str) -> None:
    rng = random.Random(8)
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    processor = SimulatedProcessor(
        success_rate=0.90, latency=(0, 0), timeout_rate=0.03, executed_on_timeout=0.5, seed=8,
        decline_codes=DECLINES,
    )  # fmt: skip
    credit = po.CreditPolicy(limit=LIMIT, currency="USD")
    options = {"processor": processor, "clock": clock, "credit": credit, "late_fees": AFTERPAY_AU,
               "collections": COLLECTIONS, "create_schema": True}  # fmt: skip
    async with await po.open_service(url, **options) as service:
        worker = po.PaymentWorker(service, batch_size=100)
        made: list[Any] = []
        figures: Counter[str] = Counter()
        written_off: set[Any] = set()
        for day in range(DAYS):
            if day < MAKING:
                await _create(service, rng, made, figures, PLANS // MAKING)
            clock.advance(timedelta(days=1))
            await worker.run_plans()
            await _one_collection_at_a_time(service)
            while await worker.run_once():
                pass
            await _people_act(service, rng, made, figures, written_off)
        for _ in range(3):  # the last day's refunds, and lookups of answers lost on the way
            clock.advance(timedelta(hours=12))  # (a lookup is due a while after the loss)
            while await worker.run_once():
                pass
        found = await _check(service, made, processor) + figures
        found += await _notices(service.store)
    backend = url.split(":", maxsplit=1)[0]
    print(f"\nsimulation on {backend}: {len(made)} plans over {DAYS} days, {dict(found)}")
    assert found["refused"] > 0  # the credit limit was reached, and held
    assert found["looked up"] > 0  # answers were lost and found again
    assert found["refunds that waited"] > 0  # refunds raced collections under way
    plans = ("completed", "cancelled", "delinquent", "active", "charged_off")
    assert sum(found[status] for status in plans) == len(made)
    assert found["completed"] > len(made) // 2
    for figure in ("collected after retries", "collection stopped", "charged off by the policy",
                   "recoveries", "reminders", "resumed"):  # fmt: skip
        assert found[figure] > 0, figure


async def _one_collection_at_a_time(service: po.PaymentService) -> None:
    """Never two collections of one plan in flight."""
    pending = await service.store.operations_with_status(po.OperationStatus.PENDING, limit=10000)
    plans = Counter(op.payment_id for op in pending if op.kind is po.OperationKind.INSTALLMENT)
    assert all(count == 1 for count in plans.values()), plans.most_common(3)


async def _notices(store: Any) -> Counter[str]:
    """The collection events written, each reminder once per installment and offset."""
    found: Counter[str] = Counter()
    reminded: Counter[tuple[Any, ...]] = Counter()
    now = po.clock.utc_now()
    while batch := await store.claim_events(1000, now=now, lease_until=now + timedelta(hours=1)):
        for message in batch:
            event = message.event
            if event.type == "plan.installment_due_soon":
                r = event.payment["reminder"]
                reminded[event.payment_id, r["installment"], r["before_seconds"]] += 1
            elif event.type == "plan.collection_failed":
                hard = event.payment["collection"]["hard"]
                found["hard declines" if hard else "soft declines"] += 1
        await store.mark_delivered([m.event.id for m in batch])
    assert all(count == 1 for count in reminded.values()), reminded.most_common(3)
    found["reminders"] = len(reminded)
    return found


async def _create(
    service: po.PaymentService,
    rng: random.Random,
    made: list[Any],
    figures: Counter[str],
    count: int,
) -> None:
    for _ in range(count):
        amount = Decimal(rng.randrange(2000, 60000)).scaleb(-2)  # 20.00 to 599.99
        terms = po.PlanTerms(refund_allocation=rng.choice(["last_first", "even"]))
        if rng.random() < 0.2:  # six monthly installments
            terms = po.PlanTerms(installments=6, interval=timedelta(days=30))
        try:
            payment = await service.create_payment(
                rng.choice(CUSTOMERS),
                amount,
                actor=ADMIN,
                capture_method="automatic",
                plan=terms,
            )
        except po.CreditLimitExceeded:
            figures["refused"] += 1
            continue
        if rng.random() < 0.03:  # changed their mind before the charge went out
            await service.cancel_payment(payment.id, actor=ADMIN, reason="changed mind")
        made.append(payment)


async def _people_act(
    service: po.PaymentService,
    rng: random.Random,
    made: list[Any],
    figures: Counter[str],
    written_off: set[Any],
) -> None:
    # Some customers each day, and every one whose collection's answer was lost today (a
    # refund on such a plan races a collection under way: it waits for its answer), and
    # every one found with a charged-off plan still unpaid (collectors call again).
    lost = await service.store.operations_with_status(po.OperationStatus.UNKNOWN, limit=1000)
    called = {op.payment_id for op in lost} | written_off
    today = rng.sample(made, k=min(len(made), 15))
    today += [p for p in made if p.id in called and p not in today]
    for payment in today:
        plan = await service.plan(payment.id)
        late = [i for i in plan.installments if i.status is InstallmentStatus.OVERDUE]
        operations = await service.operations(payment.id)
        answer_lost = any(o.status is po.OperationStatus.UNKNOWN for o in operations)
        if plan.status is po.PlanStatus.CHARGED_OFF:
            unpaid = [i for i in plan.installments if i.unpaid]
            (written_off.add if unpaid else written_off.discard)(payment.id)
            if unpaid and rng.random() < 0.3:  # the customer pays after all: a recovery
                await service.pay_installment(payment.id, unpaid[0].number, actor=ADMIN)
                figures["recoveries"] += 1
        elif (
            plan.collection_stopped and plan.status in RUNNING and rng.random() < 0.3
        ):  # the customer has a new card: a person resumes collection
            await service.resume_collection(payment.id, actor=ADMIN)
            figures["resumed"] += 1
        elif late and service.clock() - late[0].due_at > BY_HAND and rng.random() < 0.05:
            try:
                await service.charge_off(payment.id, actor=ADMIN, reason="two months late")
                figures["charged off by hand"] += 1
            except po.ValidationError as exc:  # money of the plan under way: come back later
                assert {e.code for e in exc.errors} == {"busy"}
        elif late and rng.random() < 0.15:  # a late payment, made by hand
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
        if plan.status is po.PlanStatus.CHARGED_OFF:
            await _charged_off_on_time(service, plan, statuses)
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
        assert sum(op.status in IN_FLIGHT for op in operations) <= 1
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


async def _charged_off_on_time(
    service: po.PaymentService, plan: po.Plan, statuses: Counter[str]
) -> None:
    """A plan the policy charged off was charged off on the first day its oldest unpaid
    installment was 120 days past due."""
    trail = await service.audit_trail(plan.payment_id)
    entry = next(e for e in trail if e.action == "charged_off")
    if entry.actor_id != po.Actor.system().id:
        return
    statuses["charged off by the policy"] += 1
    # Paid at the charge-off's instant counts as owed then: the day's tick (the charge-off)
    # runs before people act, and a recovery paid that day carries the same time.
    owed_then = [
        i.due_at
        for i in plan.installments
        if i.unpaid or (i.paid_at is not None and i.paid_at >= entry.at)
    ]
    late = entry.at - min(owed_then)
    assert COLLECTIONS.charge_off_after <= late < COLLECTIONS.charge_off_after + timedelta(days=1)


def _count(statuses: Counter[str], plan: po.Plan, operations: list[po.Operation]) -> None:
    """The simulation's figures, for the printed summary."""
    for op in operations:
        if op.kind is po.OperationKind.INSTALLMENT:
            if op.status is po.OperationStatus.SUCCEEDED:
                retried = (op.idempotency_key or "").count("-") > 1  # installment-N-attempt
                statuses["collected after retries" if retried else "collected at once"] += 1
            else:
                statuses["installments declined"] += 1
        if op.lookups:
            statuses["looked up"] += 1
        if op.kind is po.OperationKind.REFUND:
            through = "processor" if op.processor else "inline"
            statuses[f"refunds {through}"] += 1
    statuses["collection stopped"] += plan.collection_stopped
    statuses["fees charged"] += len(plan.late_fees)
    statuses["fees paid"] += sum(1 for f in plan.late_fees if f.paid_at)
    statuses["fees waived"] += sum(1 for f in plan.late_fees if f.waived_at)
