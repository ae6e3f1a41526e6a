"""Maintenance: purging idempotency keys, health, rebuilding exposure and closing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs
import pytest

from paymentorch.clock import utc_now
from paymentorch.domain import (
    IdempotencyConflict,
    PaymentStatus,
    StoreUnavailable,
    record_change,
    transition,
)
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.plans import PlanTerms
from paymentorch.service import PaymentService
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER, _changed, _created


class TestMaintenance:
    """Maintenance: ``purge_idempotency_keys``, ``ping`` (through health),
    ``rebuild_exposure`` and ``aclose``, after which every call raises
    ``StoreUnavailable``."""

    pytestmark = pytest.mark.asyncio

    async def test_purged_keys_can_be_used_again(self, backend: Backend) -> None:
        """Keys older than the retention are released; newer ones stay claimed."""
        clock = [utc_now() - timedelta(days=2)]
        async with service_on(backend, clock=lambda: clock[0]) as service:
            old = await service.create_payment(CUSTOMER, "1.00", actor=USER, idempotency_key="old")
            clock[0] = utc_now()
            await service.create_payment(CUSTOMER, "1.00", actor=USER, idempotency_key="new")
            assert await service.purge_idempotency_keys(timedelta(hours=24)) == 1
            reused = await service.create_payment(
                CUSTOMER, "2.00", actor=USER, idempotency_key="old"
            )
            assert reused.id != old.id
            with pytest.raises(IdempotencyConflict):
                await service.create_payment(CUSTOMER, "2.00", actor=USER, idempotency_key="new")

    async def test_health_ok(self, backend: Backend) -> None:
        """A reachable store with a fresh outbox reports ok."""
        async with service_on(backend) as service:
            await service.create_payment(CUSTOMER, "1.00", actor=USER)
            report = await service.health()
            assert report.status == "ok"
            assert report.checks["store"]["status"] == "ok"
            assert report.checks["outbox"]["pending"] == 1

    async def test_store_closed_is_unavailable(self, backend: Backend) -> None:
        """After aclose every call raises StoreUnavailable; closing twice is fine."""
        store = await backend.open_store()
        created = _created()
        await store.add(created)
        await store.aclose()
        now = utc_now()
        calls = {
            "get": lambda: store.get(created.payment.id),
            "add": lambda: store.add(_created()),
            "apply": lambda: store.apply(
                _changed(created.payment, "confirm"), expected=PaymentStatus.PENDING
            ),
            "list_payments": lambda: store.list_payments(
                status=None, customer_id=None, limit=10, after=None
            ),
            "count": lambda: store.count(status=None, customer_id=None),
            "claim_events": lambda: store.claim_events(10, now=now, lease_until=now),
            "ping": store.ping,
        }
        answered = []
        for name, call in calls.items():
            try:
                await call()
                answered.append(name)
            except StoreUnavailable:
                pass
        assert answered == [], f"a closed store answered {answered}"
        await store.aclose()

    async def test_exposure_is_counted_before_a_policy_and_never_drifts(
        self, backend: Backend
    ) -> None:
        """Exposure is counted with no credit policy, so one turned on later starts from the
        truth; it never goes below zero; ``rebuild_exposure`` repairs a damaged figure."""
        store = await backend.open_store()
        before = PaymentService(store)
        credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
        after = PaymentService(store, credit=credit)
        try:
            made = [
                await before.create_payment(CUSTOMER, amount, actor=USER)
                for amount in ("300.00", "400.00")
            ]
            planned = await before.create_payment(CUSTOMER, "80.00", actor=USER, plan=PlanTerms())
            await before.confirm_payment(planned.id, actor=ADMIN)
            assert await after.credit_exposure(CUSTOMER) == Decimal("760.00")
            for payment in made:
                await after.cancel_payment(payment.id, actor=ADMIN)
            assert await after.credit_exposure(CUSTOMER) == Decimal("60.00")
            assert await after.rebuild_exposure() == 0
            # A figure damaged behind the library's back: a change that moves it wrongly.
            damaged = await after.create_payment(CUSTOMER, "5.00", actor=USER)
            current = await store.get(damaged.id)
            assert current is not None
            confirmed = transition(current, "confirm", at=current.updated_at)
            change = record_change(confirmed, "confirm", from_status=current.status, actor_id="x")
            bogus = attrs.evolve(change, exposure=Decimal("-500.00"))
            assert await store.apply(bogus, expected=PaymentStatus.PENDING)
            assert await after.credit_exposure(CUSTOMER) == Decimal(0)  # never below zero
            assert await after.rebuild_exposure() == 1
            assert await after.credit_exposure(CUSTOMER) == Decimal("60.00")
        finally:
            await after.aclose()

    async def test_health_keeps_the_driver_to_the_log(self, backend: Backend) -> None:
        """A store that cannot answer makes health ``down`` with an error code, no driver text."""
        service = PaymentService(await backend.open_store())
        await service.aclose()
        report = await service.health()
        assert report.status == "down"
        assert report.checks["store"] == {"status": "down", "error": "store_unavailable"}
