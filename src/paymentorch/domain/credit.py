"""Credit limits: how much a customer may owe at once, pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

import attrs

from paymentorch.domain.errors import CreditLimitExceeded
from paymentorch.domain.payment import Payment, PaymentStatus
from paymentorch.domain.plans import Plan

OWED = frozenset({PaymentStatus.PENDING, PaymentStatus.AUTHORIZED})
_ZERO = Decimal(0)


def exposure_of(payment: Payment | None, plan: Plan | None = None) -> Decimal:
    """What ``payment`` adds to its customer's exposure: its amount while Pending or
    Authorized; once confirmed, the installments of its plan still unpaid."""
    if payment is None:
        return Decimal(0)
    if payment.status in OWED:
        return payment.amount
    if plan is not None and payment.status is PaymentStatus.CONFIRMED:
        return plan.owed
    return Decimal(0)


def exposure_changes(
    stored: Mapping[tuple[str, str], Decimal], wanted: Mapping[tuple[str, str], Decimal]
) -> dict[tuple[str, str], Decimal]:
    """The (customer, currency) exposures to write so that ``stored`` becomes ``wanted``
    (0 for one that should not be there)."""
    changes = {key: amount for key, amount in wanted.items() if stored.get(key) != amount}
    changes.update({key: _ZERO for key, amount in stored.items() if amount and key not in wanted})
    return changes


@attrs.frozen
class CreditPolicy:
    """Each customer's exposure (unpaid installments plus Pending and Authorized
    payments, in ``currency``) stays at or under ``limit``; ``limit_for(customer_id)``
    overrides it per customer (None: the default). Payments in other currencies are not
    limited, and late fees are not exposure."""

    limit: Decimal
    currency: str
    limit_for: Callable[[str], Decimal | None] | None = None

    @classmethod
    def parse(cls, text: str) -> CreditPolicy:
        """The policy ``"500.00 USD"`` describes (settings, command lines).

        Raises:
            ValueError: not an amount followed by a currency code.
        """
        amount, _, currency = text.strip().partition(" ")
        try:
            limit = Decimal(amount)
        except InvalidOperation:
            limit = Decimal("NaN")
        code = currency.strip().upper()
        if not limit.is_finite() or limit < 0 or len(code) != 3:
            raise ValueError(f"a credit limit looks like '500.00 USD', not {text!r}")
        return cls(limit=limit, currency=code)

    def limit_of(self, customer_id: str) -> Decimal:
        """The limit that applies to ``customer_id``."""
        custom = None if self.limit_for is None else self.limit_for(customer_id)
        return self.limit if custom is None else custom

    def applies_to(self, payment: Payment) -> bool:
        """Whether the policy limits ``payment`` (it is in the policy's currency)."""
        return payment.currency == self.currency

    def check(self, customer_id: str, exposure: Decimal, requested: Decimal) -> None:
        """Raise ``CreditLimitExceeded`` unless ``exposure + requested`` fits; reaching
        the limit exactly is allowed."""
        limit = self.limit_of(customer_id)
        if exposure + requested > limit:
            raise CreditLimitExceeded(customer_id, limit, exposure, requested)
