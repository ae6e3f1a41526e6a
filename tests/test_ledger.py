"""The books' posting rules, pure: each movement posts what DESIGN says, and balances."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

import paymentorch as po
from paymentorch.domain import plans, refund, transition
from paymentorch.domain.ledger import (
    Account,
    AccountKind,
    imbalance,
    journal_entry,
    plain_postings,
    postings,
    standing,
)

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
D = Decimal
CUSTOMER = "ABCD-12345"


def _payment(amount: str, *, has_plan: bool = False) -> po.Payment:
    return po.Payment(uuid4(), CUSTOMER, D(amount), "USD", po.PaymentStatus.PENDING, NOW, NOW,
                      has_plan=has_plan)  # fmt: skip


def _lines(before: object, after: object, clearing: str = "manual") -> dict[tuple[str, str], D]:
    found = postings(standing(*before), standing(*after), customer=CUSTOMER, currency="USD",  # type: ignore[misc]
                     clearing=clearing)  # fmt: skip
    assert not imbalance(found)
    return {(p.account.kind.value, p.account.owner): p.amount for p in found}


def test_a_plain_capture_debits_clearing_and_credits_payable() -> None:
    """Capture or confirm: debit clearing, credit the merchant's payable."""
    pending = _payment("80.00")
    confirmed = transition(pending, "confirm", at=NOW)
    assert _lines((pending,), (confirmed,), "gw") == {
        ("clearing", "gw"): D("80.00"),
        ("payable", "default"): D("-80.00"),
    }
    assert _lines((pending,), (transition(pending, "fail", at=NOW, reason="no"),)) == {}


_cents = st.integers(min_value=0, max_value=10**9).map(lambda c: D(c).scaleb(-2))


@given(
    before=st.none() | st.tuples(_cents, _cents),
    after=st.tuples(_cents, _cents),
    clearing=st.sampled_from(["manual", "gw"]),
)
def test_a_plain_payment_posts_what_its_standing_says(
    before: tuple[D, D] | None, after: tuple[D, D], clearing: str
) -> None:
    """The short way for a payment without a plan posts the lines, in order, of the
    difference of its standings (captured and refunded amounts drawn at random)."""

    def paid(captured: D, refunded: D) -> po.Payment:
        return attrs.evolve(_payment("1.00"), captured_amount=captured, refunded_amount=refunded)

    old = None if before is None else paid(*before)
    new = paid(*after)
    assert plain_postings(old, new, clearing=clearing) == postings(
        standing(old), standing(new), customer=CUSTOMER, currency="USD", clearing=clearing
    )


def test_a_plans_confirmation_a_collection_a_fee_and_a_waiver() -> None:
    """Confirmation: clearing i1 and receivable A - i1 against payable A; a collection:
    clearing against receivable; a fee: receivable against fees; a waiver: writeoffs
    against receivable."""
    pending = _payment("100.00", has_plan=True)
    plan = plans.new_plan(pending.id, D("100.00"), "USD", po.PlanTerms(), NOW)
    confirmed = transition(pending, "confirm", at=NOW)
    active = plans.activate(plan, NOW)
    assert _lines((pending, plan), (confirmed, active)) == {
        ("clearing", "manual"): D("25.00"),
        ("receivable", CUSTOMER): D("75.00"),
        ("payable", "default"): D("-100.00"),
    }
    late = NOW + timedelta(days=15)
    charged, _, _ = plans.mark_overdue(active, po.LateFeePolicy(D(10)), late)
    assert _lines((confirmed, active), (confirmed, charged)) == {
        ("receivable", CUSTOMER): D("10.00"),
        ("fees", ""): D("-10.00"),
    }
    paid = plans.pay(charged, 2, late)
    assert _lines((confirmed, charged), (confirmed, paid), "gw") == {
        ("clearing", "gw"): D("35.00"),
        ("receivable", CUSTOMER): D("-35.00"),
    }
    waived = plans.waive(paid, 3, late)
    assert _lines((confirmed, paid), (confirmed, waived)) == {
        ("writeoffs", ""): D("25.00"),
        ("receivable", CUSTOMER): D("-25.00"),
    }


def test_afterpays_refund_posts_reduction_and_return_and_shrinks_a_loss() -> None:
    """$100, first $25 paid, $80 refunded: payable 80 against receivable 75 and clearing 5.
    A refund that falls on a waived installment credits writeoffs instead."""
    pending = _payment("100.00", has_plan=True)
    plan = plans.activate(plans.new_plan(pending.id, D("100.00"), "USD", po.PlanTerms(), NOW), NOW)
    confirmed = transition(pending, "confirm", at=NOW)
    refunded = refund(confirmed, D("80.00"), at=NOW)
    after, _ = plans.refund_on_plan(plan, D("80.00"), NOW)
    assert _lines((confirmed, plan), (refunded, after), "gw") == {
        ("payable", "default"): D("80.00"),
        ("receivable", CUSTOMER): D("-75.00"),
        ("clearing", "gw"): D("-5.00"),
    }
    waived = plans.waive(plans.waive(plans.waive(plan, 2, NOW), 3, NOW), 4, NOW)
    back = refund(confirmed, D("30.00"), at=NOW)
    absorbed, done = plans.refund_on_plan(waived, D("30.00"), NOW)
    assert (done.returned, done.forgiven) == (D("25.00"), D("5.00"))
    assert _lines((confirmed, waived), (back, absorbed), "gw") == {
        ("payable", "default"): D("30.00"),
        ("clearing", "gw"): D("-25.00"),
        ("writeoffs", ""): D("-5.00"),
    }


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(["pay", "waive", "fee", "refund"]),
                          st.integers(2, 4), st.integers(1, 40)), max_size=12))  # fmt: skip
def test_entries_add_up_to_the_standing(steps: list[tuple[str, int, int]]) -> None:
    """Whatever happens to a plan, each entry balances, and the entries together are the
    standing it ends at: receivable is what is owed, payable captured less refunded."""
    payment = _payment("100.00", has_plan=True)
    plan = plans.new_plan(payment.id, D("100.00"), "USD", po.PlanTerms(), NOW)
    states = [(payment, plan)]
    payment, plan = transition(payment, "confirm", at=NOW), plans.activate(plan, NOW)
    states.append((payment, plan))
    when = NOW
    for action, number, dollars in steps:
        when += timedelta(days=8)
        try:
            if action == "pay":
                plan = plans.pay(plan, number, when)
            elif action == "waive":
                plan = plans.waive(plan, number, when)
            elif action == "fee":
                plan, _, _ = plans.mark_overdue(plan, po.LateFeePolicy(D(3)), when)
            else:
                amount = min(D(dollars), payment.refundable)
                if amount <= 0 or payment.status is not po.PaymentStatus.CONFIRMED:
                    continue
                plan, _ = plans.refund_on_plan(plan, amount, when)
                payment = refund(payment, amount, at=when)
        except po.ValidationError:
            continue
        states.append((payment, plan))
    totals: dict[Account, D] = {}
    for before, after in itertools.pairwise(states):
        lines = postings(standing(*before), standing(*after), customer=CUSTOMER, currency="USD")
        entry = journal_entry("step", payment.id, lines, at=NOW)
        for line in () if entry is None else entry.lines:
            totals[line.account] = totals.get(line.account, D(0)) + line.amount
    final = standing(payment, plan)
    receivable = totals.get(Account(AccountKind.RECEIVABLE, CUSTOMER, "USD"), D(0))
    payable = totals.get(Account(AccountKind.PAYABLE, "default", "USD"), D(0))
    assert receivable == final.receivable == plan.owed + plan.fees_owed
    assert -payable == payment.captured_amount - payment.refunded_amount
    assert sum(totals.values(), D(0)) == 0
