"""Credit limits: exposure reserved at creation, released at settlement, never past
the limit, even with creations racing in several processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from decimal import Decimal

import pytest

from paymentorch.domain import CreditLimitExceeded, NewPayment, PaymentStatus
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.plans import PlanTerms
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._workers import credit_race
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER, _close, _events, _shared

CREDIT = CreditPolicy(
    limit=Decimal("100.00"),
    currency="USD",
    limit_for=lambda customer: Decimal("5.00") if customer == "TINY-00001" else None,
)


class TestCredit:
    """Credit: ``exposure`` follows what a customer owes, and concurrent creations never
    pass the limit."""

    pytestmark = pytest.mark.asyncio

    async def test_credit_limits_what_a_customer_may_owe(self, backend: Backend) -> None:
        """Creations reserve exposure up to the limit (reaching it exactly is allowed); a
        creation past it raises and writes nothing; settled payments release it."""
        async with service_on(backend, credit=CREDIT) as service:
            first = await service.create_payment(CUSTOMER, "60.00", actor=USER, idempotency_key="a")
            again = await service.create_payment(CUSTOMER, "60.00", actor=USER, idempotency_key="a")
            assert again.id == first.id  # a replay reserves nothing more
            second = await service.create_payment(CUSTOMER, "40.00", actor=USER)
            assert await service.credit_exposure(CUSTOMER) == Decimal("100.00")
            with pytest.raises(CreditLimitExceeded) as caught:
                await service.create_payment(CUSTOMER, "0.01", actor=USER)
            assert (caught.value.exposure, caught.value.requested, caught.value.limit) == (
                Decimal("100.00"), Decimal("0.01"), Decimal("100.00"),
            )  # fmt: skip
            assert await service.count_payments(customer_id=CUSTOMER) == 2
            euros = await service.create_payment(CUSTOMER, "500.00", actor=USER, currency="EUR")
            assert euros.status is PaymentStatus.PENDING  # other currencies are not limited
            with pytest.raises(CreditLimitExceeded):  # all or nothing
                await service.create_payments(
                    [NewPayment("WXYZ-00001", "60.00"), NewPayment("WXYZ-00001", "60.00")],
                    actor=ADMIN,
                )
            assert await service.count_payments(customer_id="WXYZ-00001") == 0
            with pytest.raises(CreditLimitExceeded):
                await service.create_payment("TINY-00001", "5.01", actor=USER)
            await service.confirm_payment(first.id, actor=ADMIN)
            assert await service.credit_exposure(CUSTOMER) == Decimal("40.00")
            await service.authorize_payment(second.id, actor=ADMIN)
            assert await service.credit_exposure(CUSTOMER) == Decimal("40.00")
            await service.capture_payment(second.id, actor=ADMIN, amount="10.00")
            assert await service.credit_exposure(CUSTOMER) == 0
            third = await service.create_payment(CUSTOMER, "100.00", actor=USER)
            await service.cancel_payment(third.id, actor=ADMIN)
            fourth = await service.create_payment(CUSTOMER, "100.00", actor=USER)
            await service.fail_payment(fourth.id, reason="declined", actor=ADMIN)
            bulk = await service.create_payment(CUSTOMER, "30.00", actor=USER)
            await service.confirm_payments([bulk.id], actor=ADMIN)
            # Read at the currency's scale on every store, so its text is alike too.
            assert str(await service.credit_exposure(CUSTOMER)) == "0.00"
            assert str(await service.credit_exposure("NONE-00001")) == "0.00"
            events = [e.type for e in await _events(service.store)]
            assert events.count("payment.created") == 6  # none for the refused creations

    async def test_bulk_writes_move_each_customers_exposure(self, backend: Backend) -> None:
        """Without a limit to check, a bulk creation or confirmation moves each customer's
        exposure by the sum of its payments (one statement on PostgreSQL), as one by one."""
        async with service_on(backend) as service:
            made = await service.create_payments(
                [NewPayment("BULK-00001", "10.00"), NewPayment("BULK-00002", "5.00"),
                 NewPayment("BULK-00001", "20.00"), NewPayment("BULK-00001", "7.00", "EUR")],
                actor=ADMIN,
            )  # fmt: skip
            store = service.store
            owed = [await store.exposure("BULK-00001", "USD"),
                    await store.exposure("BULK-00002", "USD"),
                    await store.exposure("BULK-00001", "EUR")]  # fmt: skip
            assert owed == [Decimal("30.00"), Decimal("5.00"), Decimal("7.00")]
            await service.confirm_payments([p.id for p in made[:3]], actor=ADMIN)
            assert await store.exposure("BULK-00001", "USD") == 0
            assert await store.exposure("BULK-00002", "USD") == 0
            assert await store.exposure("BULK-00001", "EUR") == Decimal("7.00")
            assert await service.rebuild_exposure() == 0

    async def test_concurrent_creations_never_pass_the_limit(self, backend: Backend) -> None:
        """32 creations of 10.00 at once against a limit of 100.00: exactly 10 are made."""
        async with service_on(backend, credit=CREDIT, cache=None) as service:

            async def one() -> bool:
                try:
                    await service.create_payment("LIMT-00001", "10.00", actor=USER)
                except CreditLimitExceeded:
                    return False
                return True

            made = await asyncio.gather(*(one() for _ in range(32)))
            assert sum(made) == 10
            assert await service.credit_exposure("LIMT-00001") == Decimal("100.00")
            assert await service.count_payments(customer_id="LIMT-00001") == 10

    async def test_repeated_creations_under_a_limit_reserve_once(self, backend: Backend) -> None:
        """Creations racing with one key under a credit limit, pay-in-4 or not, all answer
        the one payment made, and its exposure is reserved once: whether the limit would
        let another one in (30.00 of 100.00) or not (60.00)."""
        async with service_on(backend, credit=CREDIT, cache=None) as service:
            cases = [("30.00", None), ("60.00", None), ("30.00", PlanTerms()),
                     ("60.00", PlanTerms())]  # fmt: skip
            for number, (amount, plan) in enumerate(cases, start=1):
                customer = f"KEYS-{number:05d}"
                made = await asyncio.gather(*(
                    service.create_payment(customer, amount, actor=USER, plan=plan,
                                           idempotency_key=f"key-{number}")
                    for _ in range(8)
                ))  # fmt: skip
                assert len({p.id for p in made}) == 1
                assert await service.credit_exposure(customer) == Decimal(amount)
                assert await service.count_payments(customer_id=customer) == 1
            assert await service.rebuild_exposure() == 0

    async def test_four_processes_never_pass_the_limit(self, backend: Backend) -> None:
        """32 creations split over 4 processes, at once: exactly 10 under a 100.00 limit."""
        _shared(backend)
        await _close(await backend.open_store())  # the schema exists before the children start
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager, context.Pool(4) as pool:
            barrier = manager.Barrier(4)
            results = await asyncio.to_thread(
                pool.starmap, credit_race, [(backend.open_store, 8, "100.00", barrier)] * 4
            )
        outcomes = [o for result in results for o in result]
        assert Counter(outcomes) == {"created": 10, "refused": 22}
        async with service_on(backend, credit=CREDIT) as service:
            assert await service.credit_exposure("LIMT-00001") == Decimal("100.00")
            assert await service.count_payments(customer_id="LIMT-00001") == 10
