"""Late fees: the policy, when an installment is late, and what it is charged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import cast

import attrs

from paymentorch.domain.errors import FieldError, ValidationError
from paymentorch.domain.money import currency_exponent, decimal_places, parse_amount
from paymentorch.domain.plans.model import Installment, LateFee, Plan
from paymentorch.domain.plans.splits import currency_unit

_ZERO = Decimal(0)
MAX_FEE = Decimal(1_000_000)
"""The largest amount a late-fee policy may name, in major units."""
MAX_DELAY = timedelta(days=3660)
"""The longest grace period or repeat delay a late-fee policy may set."""


@attrs.frozen
class LateFeePolicy:
    """When and how much a late installment costs.

    An installment unpaid after ``due_at + grace`` is overdue and charged ``first_fee``;
    ``repeat_fee`` once more if it is still unpaid ``repeat_after`` later. A plan's fees
    never add up to more than the lesser of ``cap_percent`` of the order and
    ``cap_amount`` (the fee that reaches the cap is charged in part); orders below
    ``single_fee_below`` are charged one fee at most. ``tiers`` (see ``tiered``) choose
    the fee and the cap by the order's amount instead. ``currency`` is the currency the
    amounts are in: a policy applies to plans in that currency only (the service's
    default currency when None), and its amounts must fit the currency's minor unit.

    Afterpay (Australia): ``LateFeePolicy(Decimal(10), Decimal(7), cap_percent=25,
    cap_amount=Decimal(68), single_fee_below=Decimal(40), currency="AUD")``.

    Raises:
        ValidationError: an amount that is not an exact amount from 0 to 1,000,000 in the
            currency, a percentage outside 0..100, or a delay outside 0..3,660 days.
    """

    first_fee: Decimal
    repeat_fee: Decimal | None = None
    repeat_after: timedelta = timedelta(days=7)
    grace: timedelta = timedelta(0)
    cap_percent: Decimal | int | None = None
    cap_amount: Decimal | None = None
    single_fee_below: Decimal | None = None
    tiers: tuple[tuple[Decimal, Decimal, Decimal], ...] = ()
    currency: str | None = None

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        exponent = None
        if self.currency is not None:
            code = self.currency.upper() if isinstance(self.currency, str) else ""
            exponent = currency_exponent(code) if len(code) == 3 else None
            if exponent is None:
                errors.append(FieldError("currency", "must be an active ISO 4217 code", "unknown"))
            else:
                object.__setattr__(self, "currency", code)

        def amount(name: str, value: object, *, required: bool = False) -> Decimal | None:
            if value is None and not required:
                return None
            found = _policy_amount(name, value, exponent, errors)
            return found if found is not None else _ZERO

        object.__setattr__(self, "first_fee", amount("first_fee", self.first_fee, required=True))
        for name in ("repeat_fee", "cap_amount", "single_fee_below"):
            object.__setattr__(self, name, amount(name, getattr(self, name)))
        if self.cap_percent is not None:
            percent = parse_amount(self.cap_percent)
            if isinstance(percent, str) or not 0 <= percent <= 100:
                errors.append(FieldError("cap_percent", "must be a number from 0 to 100", "range"))
            else:
                object.__setattr__(self, "cap_percent", percent)
        for name in ("repeat_after", "grace"):
            delay = getattr(self, name)
            if not isinstance(delay, timedelta) or not timedelta(0) <= delay <= MAX_DELAY:
                message = "must be a timedelta from 0 to 3,660 days"
                errors.append(FieldError(name, message, "range"))
        rows: list[tuple[Decimal, Decimal, Decimal]] = []
        for index, row in enumerate(cast(tuple[object, ...], self.tiers)):
            if not isinstance(row, tuple) or len(row) != 3:
                errors.append(FieldError(f"tiers[{index}]", "must be three amounts", "type"))
                continue
            low, fee, most = (
                amount(f"tiers[{index}].{part}", value, required=True) or _ZERO
                for part, value in zip(("min_order", "fee", "max_total"), row, strict=True)
            )
            rows.append((low, fee, most))
        object.__setattr__(self, "tiers", tuple(sorted(rows)))
        if errors:
            raise ValidationError(errors)

    @classmethod
    def tiered(
        cls,
        tiers: Sequence[tuple[Decimal | int | str, Decimal | int | str, Decimal | int | str]],
        *,
        grace: timedelta = timedelta(0),
        currency: str | None = None,
    ) -> LateFeePolicy:
        """A table of ``(min_order, fee_per_late_installment, max_total)`` rows, as
        Klarna publishes them; an order below every ``min_order`` pays no fee."""
        rows = tuple(tuple(row) for row in tiers)
        return cls(first_fee=_ZERO, grace=grace, tiers=rows, currency=currency)  # type: ignore[arg-type]

    def for_currency(self, currency: str) -> LateFeePolicy:
        """This policy for plans in ``currency`` (it must fit; one without a currency is
        given it).

        Raises:
            ValidationError: the policy is in another currency, or its amounts have more
                decimals than ``currency`` allows.
        """
        if self.currency is None:
            return attrs.evolve(self, currency=currency)
        if self.currency != currency.upper():
            message = f"is {self.currency}, not {currency.upper()}"
            raise ValidationError([FieldError("currency", message, "mismatch")])
        return self

    def terms_for(self, order: Decimal) -> tuple[Decimal, Decimal | None, Decimal | None]:
        """(first fee, repeat fee, cap) for an order of ``order``."""
        if self.tiers:
            found = [row for row in self.tiers if order >= row[0]]
            return (found[-1][1], None, found[-1][2]) if found else (_ZERO, None, _ZERO)
        caps = [c for c in (self.cap_amount,) if c is not None]
        if self.cap_percent is not None:
            caps.append(order * Decimal(self.cap_percent) / 100)
        return self.first_fee, self.repeat_fee, min(caps) if caps else None


def fee_policies(
    policies: LateFeePolicy | Iterable[LateFeePolicy] | None, default_currency: str
) -> dict[str, LateFeePolicy]:
    """Late-fee policies by the currency each applies to (a policy without a currency
    applies to ``default_currency``).

    Raises:
        ValidationError: something that is not a ``LateFeePolicy``, two policies for one
            currency, or amounts with more decimals than their currency allows.
    """
    if policies is None:
        return {}
    listed = [policies] if isinstance(policies, LateFeePolicy) else list(policies)
    found: dict[str, LateFeePolicy] = {}
    for given in listed:
        if not isinstance(cast(object, given), LateFeePolicy):
            message = "must be a LateFeePolicy or several, one per currency"
            raise ValidationError([FieldError("late_fees", message, "type")])
        policy = given.for_currency(given.currency or default_currency)
        currency = cast(str, policy.currency)
        if currency in found:
            message = f"has two policies for {currency}"
            raise ValidationError([FieldError("late_fees", message, "duplicate")])
        found[currency] = policy
    return found


def _policy_amount(
    name: str, value: object, exponent: int | None, errors: list[FieldError]
) -> Decimal | None:
    amount = parse_amount(value)
    if isinstance(amount, str):
        errors.append(FieldError(name, amount, "type"))
        return None
    if not _ZERO <= amount <= MAX_FEE:
        errors.append(FieldError(name, f"must be from 0 to {MAX_FEE}", "range"))
        return None
    if exponent is not None and decimal_places(amount) > exponent:
        message = f"has more decimals than the currency's {exponent}"
        errors.append(FieldError(name, message, "too_many_decimals"))
        return None
    return amount


def overdue(
    installment: Installment,
    policy: LateFeePolicy | None,
    now: datetime,
    busy: frozenset[int] = frozenset(),
) -> bool:
    """Whether ``installment`` is late: unpaid after its due date and the grace period,
    and not ``busy`` (a collection of it under way, or held back by a waiting refund)."""
    grace = policy.grace if policy is not None else timedelta(0)
    return (
        installment.unpaid and installment.number not in busy and now > installment.due_at + grace
    )


def fees_due(
    plan: Plan, policy: LateFeePolicy, now: datetime, busy: frozenset[int] = frozenset()
) -> list[LateFee]:
    """The late fees to charge on ``plan`` at ``now``, within the policy's caps; none for
    a ``busy`` installment."""
    unit = currency_unit(plan.currency)
    first, repeat, cap = policy.terms_for(plan.order_amount)
    charged = sum((f.amount for f in plan.late_fees), _ZERO)
    room = None if cap is None else (cap - charged).quantize(unit, rounding=ROUND_DOWN)
    single = policy.single_fee_below is not None and plan.order_amount < policy.single_fee_below
    count = {i.number: 0 for i in plan.installments}
    for charged_fee in plan.late_fees:
        count[charged_fee.installment] += 1
    new: list[LateFee] = []
    for installment in plan.installments:
        if not overdue(installment, policy, now, busy):
            continue
        late_since = installment.due_at + policy.grace
        wanted = []
        if count[installment.number] == 0:
            wanted.append(first)
        again = count[installment.number] + len(wanted) == 1
        if repeat is not None and again and now >= late_since + policy.repeat_after:
            wanted.append(repeat)
        for amount in wanted:
            if single and (plan.late_fees or new):
                return new
            fee = amount if room is None else min(amount, room)
            if fee <= 0:
                return new
            new.append(LateFee(installment.number, fee.quantize(unit), now))
            if room is not None:
                room -= fee
    return new
