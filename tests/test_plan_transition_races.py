"""A plan payment's confirm, cancel and fail racing on separate connections."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import paymentorch as po
from paymentorch.testing import Backend

ADMIN = po.Actor.system()
CREDIT = po.CreditPolicy(limit=Decimal("10000.00"), currency="USD")


async def test_a_plan_payment_s_racing_transitions_one_wins(backend: Backend) -> None:
    """Of confirm, cancel and fail racing on a pending pay-in-4 payment (each through a
    store of its own), exactly one is written; the trail has two entries, the books and
    the exposure agree with what is owed."""
    stores = [await backend.open_store() for _ in range(3 if backend.shared else 1)]
    services = [po.PaymentService(s, cache=None, credit=CREDIT) for s in stores]
    try:
        for round_ in range(4):
            payment = await services[0].create_payment(
                "PLAN-00001", "100.00", actor=ADMIN, plan=po.PlanTerms()
            )
            calls = [
                services[0].confirm_payment(payment.id, actor=ADMIN),
                services[1 % len(services)].cancel_payment(payment.id, actor=ADMIN, reason="r"),
                services[2 % len(services)].fail_payment(payment.id, actor=ADMIN, reason="r"),
            ]
            if round_ % 2:
                calls.reverse()
            results = await asyncio.gather(*calls, return_exceptions=True)
            won = [r for r in results if isinstance(r, po.Payment)]
            assert len(won) == 1, results
            assert all(isinstance(r, po.InvalidTransition) for r in results if r not in won), (
                results
            )
            trail = await services[0].audit_trail(payment.id)
            assert len(trail) == 2
            final = await services[0].get_payment(payment.id)
            assert final.status == won[0].status
        report = await services[0].verify()
        assert report.ok, report
    finally:
        for s in stores:
            await s.aclose()
