"""Collections, the pure part: the policy, days past due and aging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import paymentorch as po
from paymentorch.domain.collections import BUCKETS, CollectionPolicy, aging, bucket
from paymentorch.domain.plans import InstallmentStatus, LateFee, PlanStatus, schedule

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _plan(
    amount: str = "100.00", currency: str = "USD", paid: int = 1, **changes: object
) -> po.Plan:
    """A pay-in-4 from START, its first ``paid`` installments paid."""
    terms = po.PlanTerms()
    installments = schedule(Decimal(amount), currency, terms, START)
    installments = [
        attrs.evolve(i, status=InstallmentStatus.PAID, paid_at=i.due_at) if i.number <= paid else i
        for i in installments
    ]
    plan = po.Plan(
        uuid4(), Decimal(amount), currency, terms, PlanStatus.ACTIVE, tuple(installments)
    )
    return attrs.evolve(plan, **changes)


def test_the_default_policy_is_designs() -> None:
    policy = CollectionPolicy()
    assert policy.retries == (DAY, 3 * DAY, 7 * DAY)
    assert policy.reminders == (3 * DAY,)
    assert policy.charge_off_after == 120 * DAY
    assert policy.is_hard("card_stolen")
    assert not policy.is_hard("insufficient_funds")
    assert not policy.is_hard(None)
    assert not policy.is_hard("Card_Stolen")


def test_the_ladder_counts_from_each_decline() -> None:
    policy = CollectionPolicy(retries=[DAY, 3 * DAY])  # any iterable, kept as a tuple
    assert policy.retries == (DAY, 3 * DAY)
    declined = START + 5 * DAY
    assert policy.next_attempt(1, declined) == declined + DAY
    assert policy.next_attempt(2, declined) == declined + 3 * DAY
    assert policy.next_attempt(3, declined) is None  # run out
    assert policy.next_attempt(0, declined) is None
    assert CollectionPolicy(retries=()).next_attempt(1, declined) is None


def test_a_bad_policy_is_refused_whole() -> None:
    with pytest.raises(po.ValidationError) as caught:
        CollectionPolicy(
            retries=(timedelta(0),), hard_declines="card_stolen",  # a str is not a set
            reminders=(400 * DAY,), charge_off_after=timedelta(hours=1),
        )  # fmt: skip
    fields = sorted(e.field for e in caught.value.errors)
    assert fields == ["charge_off_after", "hard_declines", "reminders", "retries"]
    for bad in ({"retries": [DAY] * 21}, {"retries": 3}, {"hard_declines": {""}},
                {"charge_off_after": 120}):  # fmt: skip
        with pytest.raises(po.ValidationError):
            CollectionPolicy(**bad)  # type: ignore[arg-type]


def test_reminder_offsets_are_whole_seconds() -> None:
    """A reminder offset with a fraction of a second is refused: the stores keep offsets in
    whole seconds, and one cut short would send (or skip) other reminders on SQLite and
    PostgreSQL than in memory."""
    with pytest.raises(po.ValidationError) as caught:
        CollectionPolicy(reminders=(timedelta(seconds=90.5), timedelta(seconds=90.2)))
    assert [e.field for e in caught.value.errors] == ["reminders"]
    assert "whole seconds" in caught.value.errors[0].message
    assert CollectionPolicy(reminders=(timedelta(days=0.5),)).reminders == (timedelta(hours=12),)
    assert CollectionPolicy(retries=(timedelta(seconds=1.5),)).retries  # a time, kept whole


def test_days_past_due_counts_from_the_oldest_unpaid_due_date() -> None:
    plan = _plan(paid=1)  # installment 2 due START + 14 days
    due = START + 14 * DAY
    assert plan.days_past_due(START) == 0
    assert plan.days_past_due(due) == 0
    assert plan.days_past_due(due + DAY - timedelta(seconds=1)) == 0  # rounded down
    assert plan.days_past_due(due + 31 * DAY) == 31  # installment 3 is late too: the oldest
    assert _plan(paid=4).days_past_due(due + 100 * DAY) == 0


@given(st.integers(min_value=-5, max_value=400))
def test_every_day_falls_in_one_bucket(days: int) -> None:
    name = bucket(days)
    assert name in BUCKETS
    if name not in ("current", "90+"):
        low, high = (int(n) for n in name.split("-"))
        assert low <= days <= high


def test_aging_sums_running_plans_by_bucket_and_currency() -> None:
    now = START + 14 * DAY + 40 * DAY  # installment 2 of each is 40 days late
    fee = LateFee(installment=2, amount=Decimal("10.00"), charged_at=START + 20 * DAY)
    plans = [
        _plan("100.00", paid=1),  # 75.00 owed, 40 days
        _plan("80.00", "EUR", paid=1, late_fees=(fee,)),  # 60.00 EUR, 40 days, a fee
        _plan("100.00", paid=4),  # nothing owed: current
        _plan("100.00", paid=1, status=PlanStatus.COMPLETED),  # not running: left out
        _plan("100.00", paid=1, status=PlanStatus.PENDING),
    ]
    report = aging(plans, now)
    assert list(report.buckets) == list(BUCKETS)
    assert report.buckets["30-59"].count == 2
    assert dict(report.buckets["30-59"].outstanding) == {
        "USD": Decimal("75.00"), "EUR": Decimal("60.00"),
    }  # fmt: skip
    assert report.buckets["current"].count == 1
    assert dict(report.buckets["current"].outstanding) == {"USD": Decimal(0)}
    assert dict(report.fees) == {"EUR": Decimal("10.00")}
    assert report.to_dict()["buckets"]["30-59"]["outstanding"] == {"EUR": "60.00", "USD": "75.00"}
    assert sum(b.count for b in report.buckets.values()) == 3
