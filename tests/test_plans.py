"""Installment plans, pure: properties over many random cases, and the providers'
published examples (each with its source)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paymentorch as po
from paymentorch.domain import plans
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.plans import (
    InstallmentStatus,
    LateFee,
    allocate_refund,
    fees_due,
    overdue,
    split,
)

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CURRENCIES = {"JPY": 0, "USD": 2, "KWD": 3}
D = Decimal


@st.composite
def orders(draw: st.DrawFn) -> tuple[Decimal, str, po.PlanTerms]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    exponent = CURRENCIES[currency]
    count = draw(st.integers(min_value=2, max_value=60))
    units = draw(st.integers(min_value=count, max_value=10**9))
    terms = po.PlanTerms(
        installments=count,
        interval=timedelta(days=draw(st.integers(min_value=1, max_value=45))),
        remainder=draw(st.sampled_from(["first", "last"])),
        refund_allocation=draw(st.sampled_from(["last_first", "even"])),
    )
    return D(units).scaleb(-exponent), currency, terms


@settings(max_examples=500)
@given(orders())
def test_installments_add_up_exactly_and_differ_by_one_unit_at_most(
    order: tuple[Decimal, str, po.PlanTerms],
) -> None:
    amount, currency, terms = order
    unit = D(1).scaleb(-CURRENCIES[currency])
    plan = po.schedule(amount, currency, terms, START)
    amounts = [i.amount for i in plan]
    assert sum(amounts) == amount
    assert max(amounts) - min(amounts) <= unit
    assert all(a.as_tuple().exponent == -CURRENCIES[currency] for a in amounts)
    bigger = [i for i, a in enumerate(amounts) if a == max(amounts) != min(amounts)]
    if bigger:  # the remainder sits where asked
        if terms.remainder == "first":
            assert bigger == list(range(len(bigger)))
        else:
            assert bigger == list(range(len(amounts) - len(bigger), len(amounts)))
    assert [i.number for i in plan] == list(range(1, terms.installments + 1))
    assert [i.due_at for i in plan] == [START + terms.interval * n for n in range(len(plan))]


@st.composite
def refunds(draw: st.DrawFn) -> tuple[list[po.Installment], Decimal, str, str]:
    amount, currency, terms = draw(orders())
    plan = po.schedule(amount, currency, terms, START)
    paid = draw(st.integers(min_value=0, max_value=len(plan)))
    plan = [
        attrs.evolve(i, status=InstallmentStatus.PAID, paid_at=START) if i.number <= paid else i
        for i in plan
    ]
    unit = D(1).scaleb(-CURRENCIES[currency])
    units = draw(st.integers(min_value=1, max_value=int(amount / unit)))
    return plan, unit * units, currency, terms.refund_allocation


@settings(max_examples=500)
@given(refunds())
def test_a_refund_moves_exactly_its_amount_and_never_goes_negative(
    case: tuple[list[po.Installment], Decimal, str, str],
) -> None:
    plan, amount, currency, how = case
    owed_before = sum(i.amount for i in plan if i.unpaid)
    done = allocate_refund(plan, amount, currency, how)
    assert done.reduced + done.returned == amount
    assert done.reduced == min(amount, owed_before)  # what is owed goes first
    assert sum(i.amount for i in done.installments if i.unpaid) == owed_before - done.reduced
    for before, after in zip(plan, done.installments, strict=True):
        assert after.amount >= 0
        assert after.refunded_amount <= after.amount or after.status is InstallmentStatus.PAID
        assert 0 <= after.refunded_amount <= before.amount
        assert (after.status is InstallmentStatus.CANCELLED) == (
            before.unpaid and after.amount == 0
        )
    if how == "even":  # spread evenly: the reduced installments differ by one unit at most
        cuts = [
            b.amount - a.amount
            for b, a in zip(plan, done.installments, strict=True)
            if b.unpaid and a.unpaid and b.amount != a.amount
        ]
        unit = D(1).scaleb(-CURRENCIES[currency])
        assert not cuts or max(cuts) - min(cuts) <= unit


@st.composite
def late_plans(draw: st.DrawFn) -> tuple[po.Plan, po.LateFeePolicy, list[datetime]]:
    amount, currency, terms = draw(orders())
    installments = tuple(po.schedule(amount, currency, terms, START))
    policy = po.LateFeePolicy(
        first_fee=D(draw(st.integers(min_value=1, max_value=50))),
        repeat_fee=draw(st.none() | st.integers(min_value=1, max_value=20).map(D)),
        grace=timedelta(days=draw(st.integers(min_value=0, max_value=10))),
        cap_percent=draw(st.none() | st.integers(min_value=1, max_value=50)),
        cap_amount=draw(st.none() | st.integers(min_value=1, max_value=200).map(D)),
        single_fee_below=draw(st.none() | st.integers(min_value=1, max_value=100).map(D)),
    )
    plan = po.Plan(uuid4(), amount, currency, terms, po.PlanStatus.ACTIVE, installments)
    days = sorted(draw(st.lists(st.integers(min_value=0, max_value=400), max_size=12)))
    return plan, policy, [START + timedelta(days=d) for d in days]


@settings(max_examples=300)
@given(late_plans())
def test_late_fees_never_exceed_either_cap(
    case: tuple[po.Plan, po.LateFeePolicy, list[datetime]],
) -> None:
    plan, policy, moments = case
    for now in moments:
        plan = attrs.evolve(plan, late_fees=plan.late_fees + tuple(fees_due(plan, policy, now)))
    total = sum((f.amount for f in plan.late_fees), D(0))
    if policy.cap_amount is not None:
        assert total <= policy.cap_amount
    if policy.cap_percent is not None:
        assert total <= plan.order_amount * D(policy.cap_percent) / 100
    if policy.single_fee_below is not None and plan.order_amount < policy.single_fee_below:
        assert len(plan.late_fees) <= 1
    per_installment = {f.installment for f in plan.late_fees}
    for number in per_installment:
        assert len([f for f in plan.late_fees if f.installment == number]) <= 2
    assert all(f.amount > 0 for f in plan.late_fees)


def test_terms_are_checked_all_at_once() -> None:
    with pytest.raises(po.ValidationError) as caught:
        po.PlanTerms(installments=1, interval=timedelta(0), remainder="middle",  # type: ignore[arg-type]
                     refund_allocation="random")  # type: ignore[arg-type]  # fmt: skip
    assert [e.field for e in caught.value.errors] == [
        "installments",
        "interval",
        "remainder",
        "refund_allocation",
    ]


# -- the providers' published examples -------------------------------------------------


def _paid(plan: list[po.Installment], *numbers: int) -> list[po.Installment]:
    return [
        attrs.evolve(i, status=InstallmentStatus.PAID, paid_at=START) if i.number in numbers else i
        for i in plan
    ]


def test_afterpay_100_dollar_order_with_an_80_dollar_refund() -> None:
    """Afterpay: a $100 order in 4, the first paid, refunded $80: installments 2 to 4
    are cancelled and $5 goes back against the first (the worked example of this
    library's design; Afterpay applies refunds "starting with your final payment and
    working backwards": help.afterpay.com/hc/en-au/articles/19827993596313)."""
    plan = _paid(po.schedule(D("100.00"), "USD", po.PlanTerms(), START), 1)
    done = allocate_refund(plan, D("80.00"), "USD", "last_first")
    assert [(i.status.value, i.amount, i.refunded_amount) for i in done.installments] == [
        ("paid", D("25.00"), D("5.00")),
        ("cancelled", D("0.00"), D(0)),
        ("cancelled", D("0.00"), D(0)),
        ("cancelled", D("0.00"), D(0)),
    ]
    assert (done.reduced, done.returned) == (D("75.00"), D("5.00"))


def test_afterpay_sams_partial_return() -> None:
    """Afterpay's example: Sam's $500.40 order, two payments left, $143.10 returned:
    "her final payment had been cancelled, and the third instalment was reduced to
    $107.10" (help.afterpay.com/hc/en-au/articles/19827993596313)."""
    plan = _paid(po.schedule(D("500.40"), "AUD", po.PlanTerms(), START), 1, 2)
    done = allocate_refund(plan, D("143.10"), "AUD", "last_first")
    assert [(i.status.value, i.amount) for i in done.installments[2:]] == [
        ("scheduled", D("107.10")),
        ("cancelled", D("0.00")),
    ]
    assert done.returned == 0


def test_afterpay_johns_refund_on_a_paid_order() -> None:
    """Afterpay's example: John's $57.27 order, all paid, $15 refunded: "his final
    payment of $14.31 has been refunded, and a separate amount of $0.69 has been
    refunded from his third instalment" (same page). The final payment being $14.31
    also pins the split: the extra cents go to the first installments."""
    plan = po.schedule(D("57.27"), "AUD", po.PlanTerms(), START)
    assert [i.amount for i in plan] == [D("14.32"), D("14.32"), D("14.32"), D("14.31")]
    done = allocate_refund(_paid(plan, 1, 2, 3, 4), D("15.00"), "AUD", "last_first")
    assert [i.refunded_amount for i in done.installments] == [D(0), D(0), D("0.69"), D("14.31")]
    assert done.returned == D("15.00")


def test_klarna_spreads_a_partial_refund_evenly() -> None:
    """Klarna: "in case the partial refund was less than the remaining balance on your
    order, the amount will be deducted from the outstanding balance and spread evenly
    over the remaining payments"; more than the balance, "the difference will
    automatically be refunded" (klarna.com/us/customer-service/how-and-when-will-i-
    receive-my-refund/). A $100 order, the first $25 paid, $30 returned: the three
    remaining payments become $15 each; $85 returned instead: all cancelled, $10 back."""
    plan = _paid(po.schedule(D("100.00"), "USD", po.PlanTerms(refund_allocation="even"), START), 1)
    done = allocate_refund(plan, D("30.00"), "USD", "even")
    assert [i.amount for i in done.installments] == [D("25.00"), D("15.00"), D("15.00"), D("15.00")]
    more = allocate_refund(plan, D("85.00"), "USD", "even")
    assert [i.status.value for i in more.installments] == ["paid"] + ["cancelled"] * 3
    assert (more.reduced, more.returned) == (D("75.00"), D("10.00"))
    odd = allocate_refund(plan, D("10.00"), "USD", "even")  # 3.34 + 3.33 + 3.33
    assert [i.amount for i in odd.installments[1:]] == [D("21.66"), D("21.67"), D("21.67")]


AFTERPAY_AU = po.LateFeePolicy(
    first_fee=D(10),
    repeat_fee=D(7),
    repeat_after=timedelta(days=7),
    cap_percent=25,
    cap_amount=D(68),
    single_fee_below=D(40),
)
"""Afterpay Australia: "for orders of $40 or more: a $10 late fee is charged when a
payment is missed. If the outstanding amount remains unpaid after seven days, an
additional $7 late fee applies ... until the 25% cap or $68 amount is reached ... we may
charge partial amounts"; "for orders under $40: a one-time late fee of up to 25% of the
order total" (help.afterpay.com/hc/en-au/articles/360016272971)."""


def _run_late(amount: str, days: list[int], policy: po.LateFeePolicy) -> list[LateFee]:
    installments = po.schedule(D(amount), "AUD", po.PlanTerms(), START)
    plan = po.Plan(
        uuid4(), D(amount), "AUD", po.PlanTerms(), po.PlanStatus.ACTIVE,
        tuple(_paid(installments, 1)),
    )  # fmt: skip
    for day in days:
        plan = attrs.evolve(
            plan,
            late_fees=plan.late_fees + tuple(fees_due(plan, policy, START + timedelta(days=day))),
        )
    return list(plan.late_fees)


def test_afterpay_late_fees_stop_at_a_quarter_of_the_order() -> None:
    """A $100 order, nothing paid after the first: $10 + $7 on installment 2, then
    installment 3 reaches the $25 cap with $8 of its $10."""
    fees = _run_late("100.00", [14, 21, 28, 35, 42, 49, 80], AFTERPAY_AU)
    assert [(f.installment, f.amount) for f in fees] == [(2, D(10)), (2, D(7)), (3, D(8))]


def test_afterpay_late_fees_stop_at_68_dollars() -> None:
    """A $400 order: every late installment pays $10 and $7; $68 is never passed."""
    fees = _run_late("400.00", [14, 21, 28, 35, 42, 49], AFTERPAY_AU)
    assert [(f.installment, f.amount) for f in fees] == [
        (2, D(10)), (2, D(7)), (3, D(10)), (3, D(7)), (4, D(10)), (4, D(7)),
    ]  # fmt: skip
    assert sum(f.amount for f in fees) == D(51)
    big = _run_late("2000.00", [14, 21, 28, 35, 42, 49], attrs.evolve(AFTERPAY_AU, first_fee=D(20)))
    assert sum(f.amount for f in big) == D(68)  # 20+7+20+7+14: the last fee in part


def test_afterpay_orders_under_40_dollars_pay_one_fee_of_a_quarter_at_most() -> None:
    fees = _run_late("30.00", [14, 21, 28, 42], AFTERPAY_AU)
    assert [(f.installment, f.amount) for f in fees] == [(2, D("7.50"))]


KLARNA_AU = po.LateFeePolicy.tiered(
    [("25", "2", "6"), ("60", "4", "12"), ("100", "6", "18"), ("200", "8", "24")]
)
"""Klarna Australia's table: orders up to $24.99 no fee; $25-59.99 $2 per late
repayment, at most $6; $60-99.99 $4, $12; $100-199.99 $6, $18; $200+ $8, $24
(klarna.com/au/customer-service/is-there-a-late-fee-for-4-interest-free-installments)."""


@pytest.mark.parametrize(
    ("order", "fees"),
    [("20.00", []), ("50.00", [2, 2, 2]), ("80.00", [4, 4, 4]), ("150.00", [6, 6, 6]),
     ("500.00", [8, 8, 8])],
)  # fmt: skip
def test_klarna_tiered_late_fees(order: str, fees: list[int]) -> None:
    charged = _run_late(order, [14, 28, 42, 70], KLARNA_AU)
    assert [f.amount for f in charged] == [D(f) for f in fees]


def test_an_installment_is_overdue_after_its_grace_period() -> None:
    installment = po.schedule(D("40.00"), "USD", po.PlanTerms(), START)[1]
    policy = attrs.evolve(AFTERPAY_AU, grace=timedelta(days=10))
    assert not overdue(installment, policy, installment.due_at + timedelta(days=10))
    assert overdue(installment, policy, installment.due_at + timedelta(days=10, seconds=1))


def test_split_in_every_exponent() -> None:
    assert split(D("100"), "JPY", 3) == [D(34), D(33), D(33)]
    assert split(D("1.000"), "KWD", 3, remainder="last") == [D("0.333"), D("0.333"), D("0.334")]
    with pytest.raises(po.ValidationError):
        split(D("1.005"), "USD", 2)
    with pytest.raises(po.ValidationError, match="too small"):
        split(D("0.03"), "USD", 4)


def test_credit_policy_allows_reaching_the_limit_exactly() -> None:
    policy = po.CreditPolicy(limit=D("500.00"), currency="USD",
                             limit_for=lambda c: D("50.00") if c == "VIP-1" else None)  # fmt: skip
    policy.check("ABCD-12345", D("400.00"), D("100.00"))
    with pytest.raises(po.CreditLimitExceeded) as caught:
        policy.check("ABCD-12345", D("400.00"), D("100.01"))
    assert (caught.value.limit, caught.value.exposure, caught.value.requested) == (
        D("500.00"), D("400.00"), D("100.01"),
    )  # fmt: skip
    assert caught.value.code == "credit_limit_exceeded"
    with pytest.raises(po.CreditLimitExceeded):
        policy.check("VIP-1", D(0), D("50.01"))


def test_a_plan_runs_from_purchase_to_completion() -> None:
    """Confirmation pays installment 1; overdue makes it delinquent and charges fees;
    paying the rest completes it; exposure is what is still owed."""
    plan = plans.new_plan(uuid4(), D("100.00"), "AUD", po.PlanTerms(), START)
    assert plan.status is po.PlanStatus.PENDING
    assert plans.mark_overdue(plan, AFTERPAY_AU, START + timedelta(days=99))[1] == []
    plan = plans.activate(plan, START)
    assert (plan.status, plan.owed) == (po.PlanStatus.ACTIVE, D("75.00"))
    plan, late, fees = plans.mark_overdue(plan, AFTERPAY_AU, START + timedelta(days=15))
    assert (plan.status, late, [f.amount for f in fees]) == (
        po.PlanStatus.DELINQUENT, [2], [D(10)],
    )  # fmt: skip
    plan = plans.pay(plan, 2, START + timedelta(days=16))
    assert plan.status is po.PlanStatus.ACTIVE
    with pytest.raises(po.ValidationError, match="installment 2 is paid"):
        plans.pay(plan, 2, START + timedelta(days=16))
    plan = plans.pay(plans.pay(plan, 3, START), 4, START)
    assert (plan.status, plan.owed, len(plan.late_fees)) == (po.PlanStatus.COMPLETED, 0, 1)


def test_refunds_complete_or_cancel_a_plan() -> None:
    plan = plans.activate(plans.new_plan(uuid4(), D("100.00"), "USD", po.PlanTerms(), START), START)
    owed_nothing, done = plans.refund_on_plan(plan, D("75.00"), START)
    assert (owed_nothing.status, done.returned) == (po.PlanStatus.COMPLETED, 0)
    everything, done = plans.refund_on_plan(plan, D("100.00"), START)
    assert (everything.status, done.returned) == (po.PlanStatus.CANCELLED, D("25.00"))
    assert plans.refunded_total(everything) == D("100.00")
    closed = plans.close(plans.new_plan(uuid4(), D("10.00"), "USD", po.PlanTerms(), START), START)
    assert {i.status for i in closed.installments} == {InstallmentStatus.CANCELLED}


def test_exposure_counts_a_confirmed_plans_unpaid_installments() -> None:
    payment = po.Payment(uuid4(), "ABCD-12345", D("100.00"), "USD", po.PaymentStatus.PENDING,
                         START, START)  # fmt: skip
    plan = plans.new_plan(payment.id, payment.amount, "USD", po.PlanTerms(), START)
    assert exposure_of(payment, plan) == D("100.00")
    confirmed = attrs.evolve(payment, status=po.PaymentStatus.CONFIRMED)
    assert exposure_of(confirmed, plans.activate(plan, START)) == D("75.00")
    assert exposure_of(confirmed) == 0


def test_a_refund_falls_last_on_what_was_waived() -> None:
    """Owed first, then back to the customer, then the waived: nothing goes back for it."""
    plan = plans.activate(plans.new_plan(uuid4(), D("40.00"), "USD", po.PlanTerms(), START), START)
    plan = plans.waive(plan, 2, START)
    after, done = plans.refund_on_plan(plan, D("40.00"), START)
    assert (done.reduced, done.returned, done.forgiven) == (D("20.00"), D("10.00"), D("10.00"))
    assert after.status is po.PlanStatus.CANCELLED
    assert plans.refunded_total(after) == D("40.00")


# -- every amount at every door ---------------------------------------------------------


def test_an_interval_that_would_overflow_is_refused() -> None:
    """A schedule must fit in a calendar: intervals longer than 366 days are refused."""
    with pytest.raises(po.ValidationError) as caught:
        po.PlanTerms(interval=timedelta(days=10**6))
    assert [e.field for e in caught.value.errors] == ["interval"]
    longest = po.PlanTerms(installments=60, interval=timedelta(days=366))
    assert po.schedule(D("60.00"), "USD", longest, START)[-1].due_at.year == 2085


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"first_fee": 1.5}, "first_fee"),
        ({"first_fee": D("1E+30")}, "first_fee"),
        ({"first_fee": D(-1)}, "first_fee"),
        ({"first_fee": D(10), "repeat_fee": "NaN"}, "repeat_fee"),
        ({"first_fee": D(10), "cap_percent": 101}, "cap_percent"),
        ({"first_fee": D(10), "grace": timedelta(days=-1)}, "grace"),
        ({"first_fee": D(10), "repeat_after": timedelta(days=10**5)}, "repeat_after"),
        ({"first_fee": D("10.5"), "currency": "JPY"}, "first_fee"),
        ({"first_fee": D("10.005"), "currency": "USD"}, "first_fee"),
        ({"first_fee": D(10), "currency": "XXX"}, "currency"),
    ],
)
def test_a_late_fee_policy_checks_its_amounts(options: dict[str, object], field: str) -> None:
    """Fees are exact amounts from 0 to 1,000,000 in the policy's currency; a percentage
    is 0 to 100; delays are 0 to 3,660 days. Never a decimal or overflow error."""
    with pytest.raises(po.ValidationError) as caught:
        po.LateFeePolicy(**options)  # type: ignore[arg-type]
    assert field in [e.field for e in caught.value.errors]


def test_fee_policies_go_by_currency() -> None:
    """One policy per currency; one without a currency is the default currency's, and must
    fit it; two for one currency are refused."""
    usd, jpy = po.LateFeePolicy(D("10.00")), po.LateFeePolicy(D(1500), currency="jpy")
    found = plans.fee_policies([usd, jpy], "USD")
    assert {k: v.first_fee for k, v in found.items()} == {"USD": D(10), "JPY": D(1500)}
    assert found["USD"].currency == "USD"
    with pytest.raises(po.ValidationError, match="two policies"):
        plans.fee_policies([usd, po.LateFeePolicy(D(5), currency="USD")], "USD")
    with pytest.raises(po.ValidationError, match="decimals"):
        plans.fee_policies(po.LateFeePolicy(D("10.50")), "JPY")
    with pytest.raises(po.ValidationError):
        plans.fee_policies(["10 USD"], "USD")  # type: ignore[list-item]


def test_a_fee_is_paid_or_waived_with_its_installment() -> None:
    """``pay`` takes an installment with its unpaid fees (and refuses another collected
    amount); ``waive`` and a refund that cancels an installment waive its fees."""
    plan = plans.activate(plans.new_plan(uuid4(), D("100.00"), "USD", po.PlanTerms(), START), START)
    late = START + timedelta(days=15)
    plan, _, fees = plans.mark_overdue(plan, po.LateFeePolicy(D(10)), late)
    assert [f.installment for f in fees] == [2]
    assert (plan.collection_amount(2), plan.fees_owed) == (D("35.00"), D(10))
    with pytest.raises(po.ValidationError, match=r"asks for 35\.00"):
        plans.pay(plan, 2, late, amount=D("25.00"))
    paid = plans.pay(plan, 2, late, amount=D("35.00"))
    assert (paid.late_fees[0].paid_at, paid.fees_owed) == (late, D(0))
    waived = plans.waive(plan, 2, late)
    assert (waived.late_fees[0].waived_at, waived.fees_owed) == (late, D(0))
    refunded, _ = plans.refund_on_plan(plan, D("75.00"), late)  # cancels 2, 3 and 4
    assert refunded.late_fees[0].waived_at == late
    assert refunded.status is po.PlanStatus.COMPLETED


def test_busy_installments_are_not_late() -> None:
    """An installment whose collection is under way is neither marked overdue nor charged."""
    plan = plans.activate(plans.new_plan(uuid4(), D("100.00"), "USD", po.PlanTerms(), START), START)
    late = START + timedelta(days=30)
    policy = po.LateFeePolicy(D(10))
    after, marked, fees = plans.mark_overdue(plan, policy, late, frozenset({2}))
    assert (marked, [f.installment for f in fees]) == ([3], [3])
    assert after.installments[1].status is InstallmentStatus.SCHEDULED
