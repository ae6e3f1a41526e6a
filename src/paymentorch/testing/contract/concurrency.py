"""Races for one payment, in one process and across processes: exactly one winner."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections import Counter
from decimal import Decimal

import pytest

from paymentorch.domain import AmountExceeded, IdempotencyConflict, InvalidTransition, PaymentStatus
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._workers import race, refund_race
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER, _events, _shared


class TestConcurrency:
    """Concurrency: confirms, refunds, keyed repeats and captures racing for one payment,
    in one process and in several (those need ``Backend.shared``)."""

    pytestmark = pytest.mark.asyncio

    async def test_hundred_concurrent_confirms(self, backend: Backend) -> None:
        """100 concurrent confirms: one winner, 99 InvalidTransition, one entry and one event."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "30.00", actor=USER)
            results = await asyncio.gather(
                *(service.confirm_payment(payment.id, actor=ADMIN) for _ in range(100)),
                return_exceptions=True,
            )
            kinds = Counter(type(r).__name__ for r in results)
            assert kinds == Counter({"Payment": 1, "InvalidTransition": 99})
            trail = await service.audit_trail(payment.id)
            assert [e.action for e in trail] == ["created", "confirmed"]
            events = await _events(service.store)
            assert [e.type for e in events] == ["payment.created", "payment.confirmed"]

    async def test_processes_race_for_the_same_payments(self, backend: Backend) -> None:
        """4 processes confirm the same 40 payments and create with the same 25 keys."""
        _shared(backend)
        async with service_on(backend) as service:
            payments = [
                await service.create_payment(CUSTOMER, "1.00", actor=USER) for _ in range(40)
            ]
            ids = [str(p.id) for p in payments]
            keys = [f"race-{i}" for i in range(25)]
            context = multiprocessing.get_context("spawn")
            with context.Manager() as manager, context.Pool(4) as pool:
                barrier = manager.Barrier(4)
                orders = [random.sample(ids, len(ids)) for _ in range(4)]
                results = await asyncio.to_thread(
                    pool.starmap, race, [(backend.open_store, o, keys, barrier) for o in orders]
                )
            won = [pid for r in results for pid in r["won"]]
            assert sorted(won) == sorted(ids)  # every payment confirmed exactly once
            assert sum(r["lost"] for r in results) == 3 * 40
            created = {pid for r in results for pid in r["created"]}
            assert len(created) == 25
            assert await service.count_payments() == 65
            assert await service.count_payments(status=PaymentStatus.CONFIRMED) == 40
            for payment in payments:
                trail = await service.audit_trail(payment.id)
                assert [e.action for e in trail] == ["created", "confirmed"]
            events = Counter(e.type for e in await _events(service.store))
            assert events == Counter({"payment.created": 65, "payment.confirmed": 40})

    async def test_sixteen_refunds_race_for_one_payment(self, backend: Backend) -> None:
        """16 concurrent partial refunds asking for 150% of the capture refund at most 100%."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "160.00", actor=USER)
            await service.confirm_payment(payment.id, actor=ADMIN)
            results = await asyncio.gather(
                *(service.refund_payment(payment.id, "15.00", actor=ADMIN) for _ in range(16)),
                return_exceptions=True,
            )
            done = [r for r in results if not isinstance(r, BaseException)]
            refused = [r for r in results if isinstance(r, AmountExceeded)]
            assert len(done) + len(refused) == 16, results
            stored = await service.store.get(payment.id)
            assert stored is not None
            assert len(done) == 10  # 10 x 15.00 fits in 160.00; an 11th would not
            assert sum(o.amount for o in done) == stored.refunded_amount == Decimal("150.00")
            assert stored.refunded_amount <= stored.captured_amount
            assert len(await service.operations(payment.id)) == 10
            assert len(await service.audit_trail(payment.id)) == 12

    async def test_processes_race_to_refund_one_payment(self, backend: Backend) -> None:
        """4 processes, 16 refunds of 15.00 against 160.00 captured: exactly 10 go through."""
        _shared(backend)
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "160.00", actor=USER)
            await service.confirm_payment(payment.id, actor=ADMIN)
            context = multiprocessing.get_context("spawn")
            with context.Manager() as manager, context.Pool(4) as pool:
                barrier = manager.Barrier(4)
                results = await asyncio.to_thread(
                    pool.starmap,
                    refund_race,
                    [(backend.open_store, str(payment.id), ["15.00"] * 4, barrier)] * 4,
                )
            refunded = [Decimal(a) for r in results for a in r["refunded"]]
            assert len(refunded) == 10
            assert sum(len(r["refused"]) for r in results) == 6
            stored = await service.store.get(payment.id)
            assert stored is not None
            assert stored.refunded_amount == sum(refunded) == Decimal("150.00")
            ops = await service.operations(payment.id)
            assert sum(o.amount for o in ops) == stored.refunded_amount

    async def test_one_refund_key_books_one_refund(self, backend: Backend) -> None:
        """The same refund key from concurrent callers books one refund; others get it back."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "50.00", actor=USER)
            await service.confirm_payment(payment.id, actor=ADMIN)
            results = await asyncio.gather(
                *(
                    service.refund_payment(payment.id, "5.00", actor=ADMIN, idempotency_key="r-1")
                    for _ in range(10)
                )
            )
            assert len({o.id for o in results}) == 1
            stored = await service.store.get(payment.id)
            assert stored is not None
            assert stored.refunded_amount == Decimal("5.00")
            # Without an amount, a repeat returns what the first call refunded.
            whole = await service.refund_payment(payment.id, actor=ADMIN, idempotency_key="r-2")
            again = await service.refund_payment(payment.id, actor=ADMIN, idempotency_key="r-2")
            assert again == whole
            assert whole.amount == Decimal("45.00")
            with pytest.raises(IdempotencyConflict):
                await service.refund_payment(payment.id, "1.00", actor=ADMIN, idempotency_key="r-1")

    async def test_sixteen_repeats_of_a_keyed_confirm_race(self, backend: Backend) -> None:
        """16 concurrent repeats of one keyed confirm: all return the confirmed payment, and
        there is exactly one audit entry and one event for the confirmation."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "30.00", actor=USER)
            results = await asyncio.gather(
                *(
                    service.confirm_payment(payment.id, actor=ADMIN, idempotency_key="once")
                    for _ in range(16)
                )
            )
            assert {(p.status, p.version) for p in results} == {(PaymentStatus.CONFIRMED, 2)}
            trail = await service.audit_trail(payment.id)
            assert [e.action for e in trail] == ["created", "confirmed"]
            events = await _events(service.store)
            assert [e.type for e in events] == ["payment.created", "payment.confirmed"]

    async def test_capture_races_cancel(self, backend: Backend) -> None:
        """A capture and a void racing on one authorization: exactly one of them happens."""
        async with service_on(backend, cache=None) as service:
            for _ in range(5):
                payment = await service.create_payment(CUSTOMER, "20.00", actor=USER)
                await service.authorize_payment(payment.id, actor=ADMIN)
                results = await asyncio.gather(
                    service.capture_payment(payment.id, actor=ADMIN),
                    service.cancel_payment(payment.id, actor=ADMIN),
                    return_exceptions=True,
                )
                won = [r for r in results if not isinstance(r, BaseException)]
                assert len(won) == 1, results
                assert any(isinstance(r, InvalidTransition) for r in results)
                trail = await service.audit_trail(payment.id)
                assert len(trail) == 3
                assert trail[-1].to_status is won[0].status
