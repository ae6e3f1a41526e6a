"""Currencies and exact amounts: ISO 4217 exponents, no floats, no silent rounding."""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation, localcontext
from typing import Final

from iso4217 import Currency

MAX_EXPONENT: Final = max(c.exponent for c in Currency if isinstance(c.exponent, int))
"""The most minor-unit digits an ISO 4217 currency has (4: CLF, UYW)."""


@functools.cache
def currency_exponent(code: str) -> int | None:
    """The number of minor-unit digits of an active ISO 4217 ``code``, or None if unusable.

    Codes without a minor unit in the standard (gold, test codes, ...) are not payable.
    """
    try:
        currency = Currency(code)
    except ValueError:
        return None
    exponent = currency.exponent
    return exponent if isinstance(exponent, int) else None


@functools.cache
def minor_unit(exponent: int) -> Decimal:
    """``Decimal("0.01")`` for an exponent of 2, ``Decimal("1")`` for 0."""
    return Decimal(1).scaleb(-exponent)


def parse_amount(value: object) -> Decimal | str:
    """Read ``value`` as an exact Decimal, or return why it cannot be one.

    Accepts ``Decimal``, ``int`` and decimal strings; refuses ``float`` and ``bool``
    (a float has already lost the exact value the caller meant).
    """
    if isinstance(value, bool):
        return "must be a Decimal, int or decimal string, not a bool"
    if isinstance(value, float):
        return "must be a Decimal, int or decimal string, not a float (floats are inexact)"
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40 or not text.isascii():
            return "must be a decimal number such as '125.50'"
        try:
            amount = Decimal(text)
        except InvalidOperation:
            return "must be a decimal number such as '125.50'"
    else:
        return f"must be a Decimal, int or decimal string, not {type(value).__name__}"
    if not amount.is_finite():
        return "must be a finite number"
    return amount


def decimal_places(amount: Decimal) -> int:
    """How many fractional digits ``amount`` really has (``10.50`` has 1, ``100`` has 0),
    every digit counted: no context's precision rounds any away first."""
    _, digits, exponent = amount.as_tuple()
    # Only finite amounts reach here; an infinity's exponent is a letter, not a number.
    if not isinstance(exponent, int) or not any(digits):
        return 0
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))


def at_scale(value: Decimal, currency: str) -> Decimal:
    """An amount at the currency's scale (``0`` in USD is ``0.00``): how every store reads
    sums back, whatever scale its arithmetic left them at, however many digits."""
    exponent = currency_exponent(currency) or 0
    try:
        return value.quantize(minor_unit(exponent))
    except InvalidOperation:  # more digits than the context's precision holds
        with localcontext() as context:
            context.prec = value.adjusted() + exponent + 2
            return value.quantize(minor_unit(exponent))


def money_text(value: Decimal, currency: str) -> str:
    """An amount as exact text at the currency's scale (``0`` in USD is ``0.00``)."""
    return str(at_scale(value, currency))
