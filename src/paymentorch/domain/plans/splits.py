"""Exact splits in whole minor units: an order's schedule, and a refund's allocation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from paymentorch.domain.errors import FieldError, ValidationError
from paymentorch.domain.money import currency_exponent, minor_unit
from paymentorch.domain.plans.model import Installment, InstallmentStatus, PlanTerms

_ZERO = Decimal(0)


def currency_unit(currency: str) -> Decimal:
    """The minor unit of ``currency`` (0.01 for USD, 1 for JPY)."""
    exponent = currency_exponent(currency)
    if exponent is None:
        raise ValidationError([FieldError("currency", f"{currency!r} is not payable", "currency")])
    return minor_unit(exponent)


def whole_units(amount: Decimal, unit: Decimal) -> int:
    """``amount`` in minor units ``unit``; it must be a whole number of them."""
    units = amount / unit
    if units != units.to_integral_value():
        raise ValidationError(
            [FieldError("amount", "has more decimals than the currency", "scale")]
        )
    return int(units)


def split(amount: Decimal, currency: str, parts: int, *, remainder: str = "first") -> list[Decimal]:
    """``amount`` in ``parts`` that differ by at most one minor unit and add up exactly;
    the leftover units go to the first parts (``remainder="first"``) or the last."""
    unit = currency_unit(currency)
    total = whole_units(amount, unit)
    if total < parts:
        message = f"is too small to pay in {parts}: each part needs one minor unit at least"
        raise ValidationError([FieldError("amount", message, "too_small")])
    base, extra = divmod(total, parts)
    counts = [base + 1 if i < extra else base for i in range(parts)]
    if remainder == "last":
        counts.reverse()
    return [(unit * c).quantize(unit) for c in counts]


def schedule(
    amount: Decimal, currency: str, terms: PlanTerms, start: datetime
) -> list[Installment]:
    """The installments of an order of ``amount``: the first due at ``start``, the others
    every ``terms.interval`` after; they add up to ``amount`` exactly."""
    parts = split(amount, currency, terms.installments, remainder=terms.remainder)
    return [
        Installment(number=n, amount=part, due_at=start + terms.interval * (n - 1))
        for n, part in enumerate(parts, start=1)
    ]


@attrs.frozen
class Allocation:
    """What a refund does to a plan's installments.

    Attributes:
        installments: The installments after the refund: unpaid ones reduced (and
            ``cancelled`` at zero), paid ones with more ``refunded_amount``.
        reduced: How much less the customer owes.
        returned: How much goes back to the customer, against paid installments.
        forgiven: What falls on installments already waived: nobody owes it, and nothing
            goes back for it.
    """

    installments: tuple[Installment, ...]
    reduced: Decimal
    returned: Decimal
    forgiven: Decimal = _ZERO


def allocate_refund(
    installments: Sequence[Installment], amount: Decimal, currency: str, how: str
) -> Allocation:
    """Apply a refund of ``amount``: first to what is still owed (``last_first``: from
    the last installment backwards; ``even``: spread evenly over the unpaid ones), then
    what exceeds it back against paid installments, from the last paid backwards, and
    what is left against waived ones (nothing goes back for those).

    Raises:
        ValidationError: more than the order has left to refund.
    """
    unit = currency_unit(currency)
    left = whole_units(amount, unit)
    by_number = {i.number: i for i in installments}
    owed = {i.number: whole_units(i.amount, unit) for i in installments if i.unpaid}
    take = _take_last_first(owed, left) if how == "last_first" else _take_even(owed, left)
    left -= sum(take.values())
    reduced = sum(take.values())
    for number, units in take.items():
        current = by_number[number]
        remaining = owed[number] - units
        by_number[number] = attrs.evolve(
            current,
            amount=(unit * remaining).quantize(unit),
            status=InstallmentStatus.CANCELLED if remaining == 0 else current.status,
        )
    returned = 0
    for number in sorted((i.number for i in installments if i.status is InstallmentStatus.PAID),
                         reverse=True):  # fmt: skip
        if not left:
            break
        paid = by_number[number]
        room = whole_units(paid.amount - paid.refunded_amount, unit)
        back = min(room, left)
        by_number[number] = attrs.evolve(paid, refunded_amount=paid.refunded_amount + unit * back)
        left -= back
        returned += back
    forgiven = 0
    cancelled = [i.number for i in installments if i.status is InstallmentStatus.CANCELLED]
    for number in sorted(cancelled, reverse=True):
        waived = by_number[number]
        absorbed = min(whole_units(waived.amount, unit), left)
        if absorbed:
            by_number[number] = attrs.evolve(
                waived, amount=(waived.amount - unit * absorbed).quantize(unit)
            )
            left -= absorbed
            forgiven += absorbed
    if left:
        raise ValidationError(
            [FieldError("amount", "is more than the plan has left to refund", "too_large")]
        )
    return Allocation(
        tuple(by_number[i.number] for i in installments),
        (unit * reduced).quantize(unit),
        (unit * returned).quantize(unit),
        (unit * forgiven).quantize(unit),
    )


def _take_last_first(owed: dict[int, int], units: int) -> dict[int, int]:
    take: dict[int, int] = {}
    for number in sorted(owed, reverse=True):
        if not units:
            break
        take[number] = min(owed[number], units)
        units -= take[number]
    return take


def _take_even(owed: dict[int, int], units: int) -> dict[int, int]:
    # Evenly, in whole minor units: an installment smaller than its share is cancelled
    # and the rest is shared again among the others; leftover units go to the earliest.
    take = dict.fromkeys(owed, 0)
    open_ = sorted(n for n, u in owed.items() if u)
    while units and open_:
        share, extra = divmod(units, len(open_))
        small = [n for n in open_ if owed[n] - take[n] <= share]
        if small:
            for number in small:
                units -= owed[number] - take[number]
                take[number] = owed[number]
            open_ = [n for n in open_ if n not in small]
            continue
        for index, number in enumerate(open_):
            take[number] += share + (1 if index < extra else 0)
        units = 0
    return {n: u for n, u in take.items() if u}
