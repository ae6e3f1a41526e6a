"""Reading payments back: single reads, listing, paging, counting, summaries and
durability across a reopen.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from paymentorch.domain import NewPayment, PaymentNotFound, PaymentStatus, ValidationError, uuid7
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER, _events, _shared


class TestReads:
    """Reads and listing: ``get``, ``list_payments``, ``count`` and ``summarize`` answer
    exactly, and what was written survives a reopen."""

    pytestmark = pytest.mark.asyncio

    async def test_unknown_payment(self, backend: Backend) -> None:
        """Reading or changing a payment that does not exist raises PaymentNotFound."""
        async with service_on(backend) as service:
            missing = uuid7()
            for call in (
                service.get_payment(missing),
                service.confirm_payment(missing, actor=ADMIN),
                service.audit_trail(missing),
            ):
                with pytest.raises(PaymentNotFound) as caught:
                    await call
                assert caught.value.payment_id == missing

    async def test_listing_newest_first_with_filters(self, backend: Backend) -> None:
        """Listing is newest first and filters by status and customer; counts agree."""
        async with service_on(backend) as service:
            made = [
                await service.create_payment(f"ABCD-0000{i % 3}", "1.00", actor=USER)
                for i in range(9)
            ]
            for payment in made[::2]:
                await service.confirm_payment(payment.id, actor=ADMIN)
            page = await service.list_payments(limit=500)
            assert [p.id for p in page.items] == [p.id for p in reversed(made)]
            assert page.next_cursor is None
            confirmed = await service.list_payments(status="Confirmed")
            assert [p.id for p in confirmed.items] == [p.id for p in reversed(made[::2])]
            mine = await service.list_payments(
                customer_id="ABCD-00001", status=PaymentStatus.PENDING
            )
            assert [p.id for p in mine.items] == [made[7].id, made[1].id]
            assert await service.count_payments(status=PaymentStatus.CONFIRMED) == 5
            assert await service.count_payments(customer_id="ABCD-00001") == 3
            assert await service.count_payments(customer_id="ABCD-00001", status="Pending") == 2

    async def test_paging_while_others_insert(self, backend: Backend) -> None:
        """Paging through 1,000 payments while another task inserts: no duplicate, no skip."""
        async with service_on(backend) as service:
            await service.create_payments(
                [NewPayment(CUSTOMER, str(i + 1)) for i in range(1000)], actor=ADMIN
            )
            before = {p.id for p in (await service.list_payments(limit=500)).items}
            seen: list[Any] = []
            stop = asyncio.Event()

            async def insert() -> None:
                while not stop.is_set():
                    await service.create_payment(CUSTOMER, "7.77", actor=USER)
                    await asyncio.sleep(0)

            inserter = asyncio.create_task(insert())
            cursor = None
            try:
                while True:
                    page = await service.list_payments(limit=37, cursor=cursor)
                    seen += [p.id for p in page.items]
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                    await asyncio.sleep(0)  # let the inserter in between pages on every backend
            finally:
                stop.set()
                await inserter
            assert len(seen) == len(set(seen))
            existing = await service.store.list_payments(
                status=None, customer_id=None, limit=10**6, after=None
            )
            original = {p.id for p in existing if p.amount != Decimal("7.77")}
            assert len(original) == 1000
            assert len(existing) > 1000, "the inserter never ran while paging"
            assert original <= set(seen)
            assert before <= set(seen)

    async def test_listing_and_counting_by_creation_time(self, backend: Backend) -> None:
        """created_from (inclusive) and created_to (exclusive) bound listings, pages and counts."""
        base = datetime(2026, 1, 1, tzinfo=UTC)
        clock = [base]
        async with service_on(backend, clock=lambda: clock[0]) as service:
            made = []
            for day in range(5):
                clock[0] = base + timedelta(days=day, hours=12)
                made.append(await service.create_payment(CUSTOMER, f"{day + 1}.00", actor=USER))
            await service.confirm_payment(made[1].id, actor=ADMIN)
            start, end = base + timedelta(days=1), base + timedelta(days=3)
            page = await service.list_payments(created_from=start, created_to=end)
            assert [p.id for p in page.items] == [made[2].id, made[1].id]
            assert await service.count_payments(created_from=start, created_to=end) == 2
            confirmed = await service.count_payments(
                created_from=start, created_to=end, status=PaymentStatus.CONFIRMED
            )
            assert confirmed == 1
            assert await service.count_payments(created_from=made[2].created_at) == 3
            assert await service.count_payments(created_to=made[2].created_at) == 2
            first = await service.list_payments(created_from=start, limit=2)
            rest = await service.list_payments(
                created_from=start, limit=2, cursor=first.next_cursor
            )
            assert rest.next_cursor is None
            assert [p.id for p in first.items + rest.items] == [p.id for p in reversed(made[1:])]

    async def test_summary_counts_and_adds_up_exactly(self, backend: Backend) -> None:
        """The summary counts by status and day, and adds amounts exactly in each currency."""
        base = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
        clock = [base]
        async with service_on(backend, clock=lambda: clock[0]) as service:
            a = await service.create_payment(CUSTOMER, "0.10", actor=USER)
            await service.create_payment(CUSTOMER, "0.20", actor=USER)
            await service.create_payment(CUSTOMER, "1000", actor=USER, currency="JPY")
            clock[0] = base + timedelta(hours=1)  # the next day, in UTC
            b = await service.create_payment(CUSTOMER, "1.234", actor=USER, currency="KWD")
            await service.create_payment("WXYZ-00001", "5.00", actor=USER)
            await service.confirm_payment(a.id, actor=ADMIN)
            await service.cancel_payment(b.id, actor=ADMIN)
            summary = await service.summarize_payments(customer_id=CUSTOMER)
            assert summary.by_status == {
                PaymentStatus.PENDING: 2,
                PaymentStatus.AUTHORIZED: 0,
                PaymentStatus.CONFIRMED: 1,
                PaymentStatus.FAILED: 0,
                PaymentStatus.CANCELLED: 1,
                PaymentStatus.REFUNDED: 0,
            }
            assert {c: str(t) for c, t in summary.totals.items()} == {
                "JPY": "1000",
                "KWD": "1.234",
                "USD": "0.30",
            }
            assert [(d.isoformat(), sum(n.values())) for d, n in summary.days] == [
                ("2026-03-01", 3),
                ("2026-03-02", 1),
            ]
            later = await service.summarize_payments(created_from=base + timedelta(minutes=45))
            assert later.totals == {"KWD": Decimal("1.234"), "USD": Decimal("5.00")}

    async def test_bad_listing_arguments(self, backend: Backend) -> None:
        """A malformed cursor, a bad limit and an unknown status are one ValidationError."""
        async with service_on(backend) as service:
            with pytest.raises(ValidationError) as caught:
                await service.list_payments(status="Paid", limit=0, cursor="not-a-cursor")
            assert {e.field for e in caught.value.errors} == {"status", "limit", "cursor"}

    @pytest.mark.parametrize(
        ("amount", "currency"),
        [("999999.99", "USD"), ("1000", "JPY"), ("1.234", "KWD"), ("0.01", "EUR")],
    )
    async def test_exact_amounts_round_trip(
        self, backend: Backend, amount: str, currency: str
    ) -> None:
        """Amounts come back exactly as given, at the currency's scale."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, amount, actor=USER, currency=currency)
            stored = await service.get_payment(payment.id)
            assert stored.amount == Decimal(amount)
            assert str(stored.amount) == amount
            assert stored.currency == currency
            listed = (await service.list_payments()).items[0]
            assert str(listed.amount) == amount

    async def test_durable_across_reopen(self, backend: Backend) -> None:
        """Payments, audit entries and events survive closing and reopening the store."""
        _shared(backend)
        async with service_on(backend) as service:
            payment = await service.create_payment(
                CUSTOMER, "12.34", actor=USER, metadata={"x": "y"}
            )
            payment = await service.confirm_payment(payment.id, actor=ADMIN)
        async with service_on(backend) as service:
            assert await service.get_payment(payment.id) == payment
            assert dict((await service.get_payment(payment.id)).metadata) == {"x": "y"}
            assert len(await service.audit_trail(payment.id)) == 2
            assert len(await _events(service.store)) == 2
