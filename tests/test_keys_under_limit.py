"""A creation under a credit limit whose key another customer's payment holds
answers alike on every store (the in-memory store is the reference)."""

from __future__ import annotations

from decimal import Decimal

import pytest

import paymentorch as po
from paymentorch.testing import Backend

ADMIN = po.Actor.system()
CREDIT = po.CreditPolicy(limit=Decimal("100.00"), currency="USD")


async def _answers(backend: Backend) -> list[str]:
    store = await backend.open_store()
    service = po.PaymentService(store, cache=None, credit=CREDIT)
    answers = []
    try:
        held = await service.create_payment(
            "HOLD-00001", "50.00", actor=ADMIN, idempotency_key="K", plan=po.PlanTerms()
        )
        await service.create_payment("OTHR-00001", "80.00", actor=ADMIN)
        for amount, plan in (("10.00", None), ("30.00", None), ("500.00", po.PlanTerms()),
                             ("50.00", None), ("30.00", po.PlanTerms())):  # fmt: skip
            try:
                got = await service.create_payment(
                    "OTHR-00001", amount, actor=ADMIN, idempotency_key="K", plan=plan
                )
                answers.append(f"{amount}: {'holder' if got.id == held.id else 'new'}")
            except po.PaymentError as exc:
                answers.append(f"{amount}: {type(exc).__name__}")
        exposure = await service.credit_exposure("OTHR-00001")
        answers.append(f"exposure {exposure}")
        assert (await service.verify()).ok
    finally:
        await store.aclose()
    return answers


@pytest.mark.postgres
async def test_a_key_held_by_another_customer_answers_as_in_memory(
    memory_backend: Backend, postgres_backend: Backend, sqlite_backend: Backend
) -> None:
    expected = await _answers(memory_backend)
    assert await _answers(postgres_backend) == expected
    assert await _answers(sqlite_backend) == expected
