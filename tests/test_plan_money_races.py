"""A confirmed plan's refund, installment payment and charge-off racing."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import paymentorch as po
from paymentorch.testing import Backend

ADMIN = po.Actor.system()
CREDIT = po.CreditPolicy(limit=Decimal("10000.00"), currency="USD")


async def test_a_plan_s_refund_payment_and_charge_off_racing_keep_the_books(
    backend: Backend,
) -> None:
    stores = [await backend.open_store() for _ in range(3 if backend.shared else 1)]
    services = [po.PaymentService(s, cache=None, credit=CREDIT) for s in stores]
    try:
        for round_ in range(3):
            payment = await services[0].create_payment(
                "MONY-00001", "100.00", actor=ADMIN, plan=po.PlanTerms()
            )
            await services[0].confirm_payment(payment.id, actor=ADMIN)
            calls = [
                services[0].refund_payment(payment.id, "10.00", actor=ADMIN, reason="r"),
                services[1 % len(services)].pay_installment(payment.id, 2, actor=ADMIN),
                services[2 % len(services)].charge_off(payment.id, actor=ADMIN, reason="r"),
            ]
            if round_ % 2:
                calls.reverse()
            results = await asyncio.gather(*calls, return_exceptions=True)
            for r in results:
                assert not isinstance(r, po.StoreError), results
        report = await services[0].verify()
        assert report.ok, report
    finally:
        for s in stores:
            await s.aclose()
