"""Hostile input: one ValidationError listing exactly the bad fields, and nothing stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paymentorch as po
from paymentorch.testing import Backend
from tests import strategies as s

USER = po.Actor("u", roles={po.Role.USER})

FIELDS = {
    "customer_id": (s.good_customer, s.bad_customer),
    "amount": (s.good_amount, s.bad_amount),
    "currency": (s.good_currency, s.bad_currency),
    "idempotency_key": (s.good_key, s.bad_key),
    "metadata": (s.good_metadata, s.bad_metadata),
}


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    bad = draw(st.sets(st.sampled_from(sorted(FIELDS)), min_size=1))
    values = {name: draw(FIELDS[name][name in bad]) for name in FIELDS}
    return values, bad


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_hostile_requests_are_refused_whole(request: tuple[dict[str, Any], set[str]]) -> None:
    """Every bad field is reported in one error, and the store stays empty."""
    values, bad = request
    with po.open_sync_service("memory://") as service:
        try:
            service.create_payment(
                values["customer_id"],
                values["amount"],
                actor=USER,
                currency=values["currency"],
                idempotency_key=values["idempotency_key"],
                metadata=values["metadata"],
            )
        except po.ValidationError as exc:
            reported = {e.field.split(".")[0] for e in exc.errors}
            if "currency" in bad:
                # Without a currency, an amount's decimal places cannot be judged.
                assert reported - {"amount"} == bad - {"amount"}
                assert "amount" not in reported or "amount" in bad
            else:
                assert reported == bad
            assert all(e.message and e.code for e in exc.errors)
        else:
            raise AssertionError(f"accepted hostile input in {sorted(bad)}")
        assert service.count_payments() == 0
        assert service.health().checks["outbox"]["pending"] == 0


@settings(max_examples=200)
@given(s.good_customer, s.good_amount, s.good_currency, s.good_key, s.good_metadata)
def test_good_requests_are_stored_exactly(
    customer: str, amount: Any, currency: str | None, key: str | None, metadata: Any
) -> None:
    """Every valid request is stored with its exact amount and normalised currency."""
    with po.open_sync_service("memory://") as service:
        payment = service.create_payment(
            customer, amount, actor=USER, currency=currency, idempotency_key=key, metadata=metadata
        )
        assert payment.currency == (currency or "USD").upper()
        assert payment.amount == Decimal(str(amount))
        assert service.get_payment(payment.id) == payment


@pytest.mark.parametrize(
    ("account", "field"),
    [
        (po.Account(po.AccountKind.PAYABLE, "default", "usd"), "account.currency"),
        (po.Account(po.AccountKind.FEES, "", "ZZZ"), "account.currency"),
        (po.Account(po.AccountKind.FEES, "", "XAU"), "account.currency"),
        (po.Account(po.AccountKind.RECEIVABLE, "AB\x00CD", "USD"), "account.owner"),
    ],
)
async def test_a_balance_of_no_account_is_refused(
    backend: Backend, account: po.Account, field: str
) -> None:
    """A currency that is not one, or an owner no store can hold, is a ValidationError
    naming it on every backend, not a zero (or a driver's complaint)."""
    async with await po.open_service(backend.url or "memory://") as service:
        with pytest.raises(po.ValidationError) as caught:
            await service.balance(account)
    assert [e.field for e in caught.value.errors] == [field]
    with (
        po.open_sync_service(backend.url or "memory://") as twin,
        pytest.raises(po.ValidationError) as caught,
    ):
        twin.balance(account)
    assert [e.field for e in caught.value.errors] == [field]
