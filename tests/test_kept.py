"""What a SQL store keeps of the payments it created, for their first transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from paymentorch.adapters._kept import FRESH_FOR, KeptAsWritten
from paymentorch.domain import Payment, PaymentStatus, uuid7

START = datetime(2026, 1, 1, tzinfo=UTC)


def _payment() -> Payment:
    return Payment(
        id=uuid7(), customer_id="AAAA-00001", amount=Decimal("10.00"), currency="USD",
        status=PaymentStatus.PENDING, created_at=START, updated_at=START,
    )  # fmt: skip


def test_a_kept_payment_serves_one_transition() -> None:
    kept: KeptAsWritten[str] = KeptAsWritten(10)
    payment = _payment()
    kept.keep(payment, "plan")
    assert kept.get(payment.id) == (payment, "plan")  # looking leaves it kept
    assert kept.take(payment.id, START) == (payment, "plan")
    assert kept.take(payment.id, START) is None
    assert kept.get(payment.id) is None


def test_a_kept_payment_serves_until_an_hour_after_its_creation() -> None:
    kept: KeptAsWritten[None] = KeptAsWritten(10)
    early, late = _payment(), _payment()
    kept.keep(early, None)
    kept.keep(late, None)
    assert kept.take(early.id, START + FRESH_FOR - timedelta(microseconds=1)) == (early, None)
    assert kept.take(late.id, START + FRESH_FOR) is None
    assert kept.get(late.id) is None  # spent, not kept for a later clock


def test_the_oldest_go_beyond_the_size_and_a_purge_forgets_all() -> None:
    kept: KeptAsWritten[int] = KeptAsWritten(2)
    payments = [_payment() for _ in range(3)]
    for number, payment in enumerate(payments):
        kept.keep(payment, number)
    assert [kept.get(p.id) is not None for p in payments] == [False, True, True]
    kept.forget()
    assert all(kept.take(p.id, START) is None for p in payments)
