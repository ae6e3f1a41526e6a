"""The blocking twin's one-step capture answers as the async service does."""

from __future__ import annotations

import pytest

import paymentorch as po
from paymentorch.domain import PaymentStatus, ValidationError
from paymentorch.testing import Backend
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER


@pytest.mark.parametrize("amount", ["1E-20000", "-1E+200000", "12.5"])
def test_the_blocking_twin_captures_as_the_async_service(backend: Backend, amount: str) -> None:
    """``open_sync_service``: the same answer as the async service (ValidationError for an
    amount no currency holds, 12.50 for 12.5), on every store."""
    with po.open_sync_service(backend.url or "memory://") as service:
        payment = service.create_payment(CUSTOMER, "100.00", actor=USER)
        payment = service.authorize_payment(payment.id, actor=ADMIN)
        if amount == "12.5":
            assert (
                str(service.capture_payment(payment.id, actor=ADMIN, amount=amount).captured_amount)
                == "12.50"
            )
        else:
            with pytest.raises(ValidationError):
                service.capture_payment(payment.id, actor=ADMIN, amount=amount)
            assert service.get_payment(payment.id).status is PaymentStatus.AUTHORIZED
        assert service.verify().ok


def test_the_blocking_twin_reads_a_plan_with_its_payment(backend: Backend) -> None:
    """Plan decisions of the twin (capture whole, installment paid, refund, charge-off,
    bulk confirm) read payment and plan together and keep the books."""
    from paymentorch.domain.plans import PlanTerms

    with po.open_sync_service(backend.url or "memory://") as service:
        payment = service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        other = service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
        payment = service.authorize_payment(payment.id, actor=ADMIN)
        with pytest.raises(ValidationError, match="captured whole"):
            service.capture_payment(payment.id, actor=ADMIN, amount="99")
        assert service.capture_payment(payment.id, actor=ADMIN, amount="100").status is (
            PaymentStatus.CONFIRMED
        )
        assert [p.id for p in service.confirm_payments([other.id], actor=ADMIN).confirmed] == [
            other.id
        ]
        service.pay_installment(payment.id, 2, actor=ADMIN)
        service.refund_payment(payment.id, "10.00", actor=ADMIN, reason="r")
        assert service.charge_off(payment.id, actor=ADMIN, reason="r").status.value == (
            "charged_off"
        )
        assert service.verify().ok
