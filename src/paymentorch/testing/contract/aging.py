"""Aging: ``plans_by_age`` lists running plans by their oldest unpaid due date, and the
aging report and the delinquent list read it on the service's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paymentorch.domain import ValidationError
from paymentorch.domain.plans import PlanTerms
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class TestAging:
    """``plans_by_age`` in order and by pages; ``aging_report`` and ``delinquent_plans``."""

    pytestmark = pytest.mark.asyncio

    async def test_the_book_by_days_past_due(self, backend: Backend) -> None:
        """Plans bought on different days age into their buckets; a plan paid up leaves
        the delinquent list; pages follow each other without a gap or a repeat."""
        now = [START]
        async with service_on(backend, clock=lambda: now[0]) as service:
            made = []
            for day, amount in enumerate(("100.00", "80.00", "60.00", "40.00", "20.00")):
                now[0] = START + day * DAY  # a purchase a day: plan i is i days younger
                terms = PlanTerms(interval=timedelta(days=30))
                payment = await service.create_payment(CUSTOMER, amount, actor=USER, plan=terms)
                await service.confirm_payment(payment.id, actor=ADMIN)  # installment 1 paid
                made.append(payment.id)
            cancelled = await service.create_payment(CUSTOMER, "10.00", actor=USER,
                                                     plan=PlanTerms())  # fmt: skip
            await service.cancel_payment(cancelled.id, actor=ADMIN)  # no running plan

            listed = await service.store.plans_by_age(after=None, limit=10)
            assert [pid for pid, _ in listed] == made  # oldest due date first
            assert listed[0][1] == START + 30 * DAY
            halves = await service.store.plans_by_age(after=None, limit=2)
            rest = await service.store.plans_by_age(after=(halves[-1][1], halves[-1][0]), limit=10)
            assert halves + rest == listed

            now[0] = START + 30 * DAY + 35 * DAY  # plan 0 is 35 days late, plan 4 is 31
            report = await service.aging_report()
            assert report.as_of == now[0]
            assert report.buckets["30-59"].count == 5
            assert dict(report.buckets["30-59"].outstanding) == {"USD": Decimal("225.00")}
            early = await service.aging_report(as_of=START + 31 * DAY)
            assert (early.buckets["1-29"].count, early.buckets["current"].count) == (1, 4)

            first = await service.delinquent_plans(limit=2)
            assert [p.payment_id for p in first.items] == made[:2]
            assert first.next_cursor is not None
            second = await service.delinquent_plans(limit=2, cursor=first.next_cursor)
            third = await service.delinquent_plans(limit=2, cursor=second.next_cursor)
            assert [p.payment_id for p in second.items + third.items] == made[2:]
            assert third.next_cursor is None

            for number in (2, 3, 4):
                await service.pay_installment(made[0], number, actor=ADMIN)  # paid up
            page = await service.delinquent_plans(limit=10)
            assert [p.payment_id for p in page.items] == made[1:]
            assert (await service.aging_report()).buckets["30-59"].count == 4

    async def test_bad_input_changes_nothing(self, backend: Backend) -> None:
        """A bad limit, cursor or time is one clear ``ValidationError``."""
        async with service_on(backend) as service:
            page = await service.list_payments(limit=1)
            for limit, cursor in ((0, None), (True, None), (10, "nonsense"), (10, "")):
                with pytest.raises(ValidationError):
                    await service.delinquent_plans(limit=limit, cursor=cursor)
            assert page.next_cursor is None  # (no payments: nothing to cross over)
            for as_of in (datetime(2026, 1, 1), "2026-01-01"):  # noqa: DTZ001 - naive on purpose
                with pytest.raises(ValidationError, match="as_of"):
                    await service.aging_report(as_of=as_of)  # type: ignore[arg-type]
            payment = await service.create_payment(CUSTOMER, "1.00", actor=USER)
            await service.create_payment(CUSTOMER, "1.00", actor=USER)
            listing = await service.list_payments(limit=1)
            assert listing.items[0].id != payment.id
            with pytest.raises(ValidationError, match="delinquent_plans"):
                await service.delinquent_plans(cursor=listing.next_cursor)

    async def test_delinquent_ties_go_by_payment_id(self, backend: Backend) -> None:
        """Two plans 6 whole days past due, the younger one's installment due an hour
        earlier: a tie in days, listed by payment id (the older payment first)."""
        now = [START]
        async with service_on(backend, clock=lambda: now[0]) as service:
            made = []
            for interval in (timedelta(days=14), timedelta(days=13, hours=22)):
                terms = PlanTerms(interval=interval)
                payment = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=terms)
                await service.confirm_payment(payment.id, actor=ADMIN)
                made.append(payment.id)
                now[0] += timedelta(hours=1)
            now[0] = START + timedelta(days=20, hours=12)
            plans = [await service.plan(pid) for pid in made]
            assert [p.days_past_due(now[0]) for p in plans] == [6, 6]
            page = await service.delinquent_plans()
            assert [p.payment_id for p in page.items] == sorted(made)
            first = await service.delinquent_plans(limit=1)  # a tie split across pages
            now[0] += timedelta(hours=20)  # a later page keeps the first page's days
            second = await service.delinquent_plans(limit=1, cursor=first.next_cursor)
            assert [p.payment_id for p in (*first.items, *second.items)] == sorted(made)
            assert second.next_cursor is None
