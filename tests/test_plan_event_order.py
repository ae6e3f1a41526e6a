"""A plan's events reach the outbox in the order the in-memory store keeps."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

import paymentorch as po
from paymentorch.clock import utc_now
from paymentorch.testing import Backend

ADMIN = po.Actor.system()
CREDIT = po.CreditPolicy(limit=Decimal("10000.00"), currency="USD")


async def _types(backend: Backend) -> list[str]:
    store = await backend.open_store()
    service = po.PaymentService(store, cache=None, credit=CREDIT)
    try:
        one = await service.create_payment("ORDR-00001", "100.00", actor=ADMIN,
                                           plan=po.PlanTerms())  # fmt: skip
        two = await service.create_payment("ORDR-00001", "80.00", actor=ADMIN,
                                           plan=po.PlanTerms())  # fmt: skip
        three = await service.create_payment("ORDR-00002", "60.00", actor=ADMIN,
                                             plan=po.PlanTerms())  # fmt: skip
        await service.confirm_payment(one.id, actor=ADMIN)
        await service.confirm_payments([two.id], actor=ADMIN)
        for number in (2, 3, 4):
            await service.pay_installment(one.id, number, actor=ADMIN)
        await service.charge_off(two.id, actor=ADMIN, reason="gone")
        await service.cancel_payment(three.id, actor=ADMIN, reason="no")
        names = {one.id: "one", two.id: "two", three.id: "three"}
        now = utc_now()
        found: list[str] = []
        while batch := await store.claim_events(
            1000, now=now, lease_until=now + timedelta(minutes=1)
        ):
            found += [f"{names[m.event.payment_id]}:{m.event.type}" for m in batch]
            await store.mark_delivered([m.event.id for m in batch])
        assert (await service.verify()).ok
        for customer in ("ORDR-00001", "ORDR-00002"):
            found.append(f"{customer}: {await service.credit_exposure(customer):.2f}")
        return found
    finally:
        await store.aclose()


@pytest.mark.postgres
async def test_a_plan_s_events_keep_the_in_memory_order(
    memory_backend: Backend, postgres_backend: Backend, sqlite_backend: Backend
) -> None:
    expected = await _types(memory_backend)
    assert await _types(postgres_backend) == expected
    assert await _types(sqlite_backend) == expected
