"""Input rules: one ``ValidationError`` lists every broken rule, and nothing is stored."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final
from uuid import UUID

import attrs

from paymentorch.domain.errors import FieldError, IdempotencyConflict, ValidationError
from paymentorch.domain.money import (
    MAX_EXPONENT,
    currency_exponent,
    decimal_places,
    minor_unit,
    parse_amount,
)
from paymentorch.domain.operations import Operation
from paymentorch.domain.payment import Payment, PaymentStatus

DEFAULT_MAX_AMOUNT: Final = Decimal(1_000_000)
"""The largest amount, in major units, unless ``ValidationPolicy(max_amount=...)`` says."""
KEY_RETENTION: Final = timedelta(hours=24)
"""Idempotency keys are kept at least this long."""
MAX_PAGE: Final = 500
"""The largest page ``list_payments`` returns."""
MAX_BULK_IDS: Final = 10_000
"""The most ids one ``confirm_payments`` call takes."""
MAX_ATTEMPTS: Final = 50
"""How often a change is tried again after losing a race, before it gives up."""

# Lone surrogates too: no store can encode them (UTF-8 has no place for them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_TEXT = re.compile(  # tab and newlines allowed
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"
)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


@attrs.frozen
class NewPayment:
    """A payment to create, as the caller gave it (validated by the service).

    Attributes:
        customer_id: Who pays.
        amount: ``Decimal``, ``int`` or decimal string; never a float.
        currency: ISO 4217 code; the service's default when None.
        idempotency_key: Makes retries safe, when given.
        metadata: Up to 20 string pairs.
    """

    customer_id: str
    amount: Decimal | int | str
    currency: str | None = None
    idempotency_key: str | None = None
    metadata: Mapping[str, str] | None = None


@attrs.frozen
class ValidPayment:
    """A ``NewPayment`` that passed every rule, normalised (amount quantized, currency upper)."""

    customer_id: str
    amount: Decimal
    currency: str
    idempotency_key: str | None
    metadata: dict[str, str]


@attrs.frozen
class ValidationPolicy:
    """The input rules; the defaults follow the seed design.

    Attributes:
        customer_id_pattern: Full-match pattern for customer ids (ASCII classes).
        min_amount: Smallest amount, in major units.
        max_amount: Largest amount, in major units: one for every currency, or a mapping
            by currency code (a currency it does not name keeps the default, 1,000,000).
        max_metadata_items: Most metadata pairs.
        max_metadata_key_length: Longest metadata key.
        max_metadata_value_length: Longest metadata value.
        max_idempotency_key_length: Longest idempotency key.
        max_reason_length: Longest failure or cancellation reason.
    """

    customer_id_pattern: str = r"[A-Z]{4}-\d{5}"
    min_amount: Decimal = Decimal("0.01")
    max_amount: Decimal | Mapping[str, Decimal] = DEFAULT_MAX_AMOUNT
    max_metadata_items: int = 20
    max_metadata_key_length: int = 40
    max_metadata_value_length: int = 500
    max_idempotency_key_length: int = 255
    max_reason_length: int = 500
    _pattern: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.customer_id_pattern, re.ASCII))
        limits = self.max_amount
        pairs = limits.items() if isinstance(limits, Mapping) else [("", limits)]
        checked: dict[str, Decimal] = {}
        for code, limit in pairs:
            amount = parse_amount(limit)
            if isinstance(amount, str) or amount <= 0:
                raise ValidationError(
                    [FieldError("max_amount", "must be amounts above zero", "range")]
                )
            checked[str(code).upper()] = amount
        if isinstance(limits, Mapping):
            object.__setattr__(self, "max_amount", MappingProxyType(checked))
        else:
            object.__setattr__(self, "max_amount", checked[""])

    def plain_amount(self, value: object) -> Decimal | None:
        """``value`` as an amount every currency takes as it is: more than zero, at most
        the largest amount of the currency that allows the least, and exact in every
        currency's scale (4 decimal places at most). None: only the payment's currency
        can say (``check_money``)."""
        amount = parse_amount(value)
        if isinstance(amount, str) or not amount > 0 or decimal_places(amount) > MAX_EXPONENT:
            return None
        limits = self.max_amount
        if isinstance(limits, Mapping):
            return amount if amount <= min((*limits.values(), DEFAULT_MAX_AMOUNT)) else None
        return amount if amount <= limits else None

    def max_amount_for(self, currency: str | None) -> Decimal:
        """The largest amount allowed in ``currency``."""
        limits = self.max_amount
        if isinstance(limits, Mapping):
            return limits.get(currency or "", DEFAULT_MAX_AMOUNT)
        return limits

    def check_payment(
        self, new: NewPayment, *, default_currency: str, prefix: str = ""
    ) -> tuple[ValidPayment | None, list[FieldError]]:
        """Validate one new payment; return it normalised, or every problem found."""
        errors: list[FieldError] = []

        def bad(field: str, message: str, code: str) -> None:
            errors.append(FieldError(prefix + field, message, code))

        self._check_customer_id(new.customer_id, bad)
        currency = self._check_currency(
            default_currency if new.currency is None else new.currency, bad
        )
        amount = self._check_amount(new.amount, currency, bad)
        self._check_idempotency_key(new.idempotency_key, bad)
        metadata = {} if new.metadata is None else self._check_metadata(new.metadata, bad)
        if errors or amount is None or currency is None:
            return None, errors
        return ValidPayment(
            customer_id=new.customer_id,
            amount=amount,
            currency=currency,
            idempotency_key=new.idempotency_key,
            metadata=metadata,
        ), errors

    def validate_payment(self, new: NewPayment, *, default_currency: str) -> ValidPayment:
        """Like ``check_payment``, raising one ``ValidationError`` for every problem."""
        valid, errors = self.check_payment(new, default_currency=default_currency)
        if valid is None:
            raise ValidationError(errors)
        return valid

    def check_field(
        self, field: str, value: object, *, currency: str = "USD"
    ) -> tuple[Any, list[FieldError]]:
        """One field of a new payment: ``(normalised value, problems)``.

        For hosts that validate request fields one at a time (a Pydantic model, a form):
        ``customer_id``, ``currency``, ``amount`` (checked against ``currency``),
        ``idempotency_key`` or ``metadata``. The value is None when there are problems.
        """
        errors: list[FieldError] = []

        def bad(name: str, message: str, code: str) -> None:
            errors.append(FieldError(name, message, code))

        result: Any = value
        if field == "customer_id":
            self._check_customer_id(value, bad)
        elif field == "currency":
            result = self._check_currency(value, bad)
        elif field == "amount":
            result = self._check_amount(value, currency, bad)
        elif field == "idempotency_key":
            self._check_idempotency_key(value, bad)
        elif field == "metadata":
            result = self._check_metadata(value, bad)
        else:
            raise ValueError(f"no rule for field {field!r}")
        return (None if errors else result), errors

    def check_money(
        self, value: object, currency: str, field: str = "amount"
    ) -> tuple[Decimal | None, list[FieldError]]:
        """An amount to capture, refund or collect: more than zero, at most the largest
        amount, exact in ``currency``."""
        amount = parse_amount(value)
        if isinstance(amount, str):
            return None, [FieldError(field, amount, "type")]
        if amount <= 0:
            return None, [FieldError(field, "must be more than zero", "too_small")]
        largest = self.max_amount_for(currency)
        if amount > largest:
            return None, [FieldError(field, f"must be at most {largest}", "too_large")]
        exponent = currency_exponent(currency) or 0
        if decimal_places(amount) > exponent:
            message = (
                f"{currency} allows {exponent} decimal place(s); amounts are never rounded silently"
            )
            return None, [FieldError(field, message, "too_many_decimals")]
        return amount.quantize(minor_unit(exponent)), []

    def check_operation_key(self, value: object) -> list[FieldError]:
        """Problems with a refund's idempotency key (the rules of a creation's key)."""
        if value is None:  # most calls: spare them the closure below
            return []
        errors: list[FieldError] = []

        def bad(field: str, message: str, code: str) -> None:
            errors.append(FieldError(field, message, code))

        self._check_idempotency_key(value, bad)
        return errors

    def check_reason(self, reason: object, *, required: bool) -> list[FieldError]:
        """Problems with a failure or cancellation reason."""
        if reason is None:
            return [FieldError("reason", "is required", "required")] if required else []
        if not isinstance(reason, str):
            return [FieldError("reason", "must be a string", "type")]
        if not reason.strip():
            return [FieldError("reason", "must not be blank", "blank")]
        if len(reason) > self.max_reason_length:
            return [
                FieldError(
                    "reason",
                    f"must be at most {self.max_reason_length} characters",
                    "too_long",
                )
            ]
        if _CONTROL_IN_TEXT.search(reason):
            return [
                FieldError(
                    "reason", "must not contain control characters or lone surrogates", "control"
                )
            ]
        return []

    def _check_customer_id(self, value: object, bad: Any) -> None:
        if not isinstance(value, str):
            bad("customer_id", "must be a string", "type")
        elif not 1 <= len(value) <= 100:
            bad("customer_id", "must be 1 to 100 characters", "length")
        elif _CONTROL.search(value):
            bad("customer_id", "must not contain control characters or lone surrogates", "control")
        elif not self._pattern.fullmatch(value):
            bad(
                "customer_id",
                f"must match {self.customer_id_pattern} (accept your own ids with"
                " ValidationPolicy(customer_id_pattern=...))",
                "pattern",
            )

    def _check_currency(self, value: object, bad: Any) -> str | None:
        if not isinstance(value, str):
            bad("currency", "must be a string", "type")
            return None
        code = value.upper()
        if len(code) != 3 or not code.isascii() or currency_exponent(code) is None:
            bad("currency", f"{value[:10]!r} is not an active ISO 4217 currency", "unknown")
            return None
        return sys.intern(code)  # a million payments share three bytes, not a million copies

    def _check_amount(self, value: object, currency: str | None, bad: Any) -> Decimal | None:
        amount = parse_amount(value)
        if isinstance(amount, str):
            bad("amount", amount, "type")
            return None
        ok = True
        if amount < self.min_amount:
            bad("amount", f"must be at least {self.min_amount}", "too_small")
            ok = False
        elif amount > (largest := self.max_amount_for(currency)):
            bad("amount", f"must be at most {largest}", "too_large")
            ok = False
        if currency is None:
            return None
        exponent = currency_exponent(currency) or 0  # the currency was checked already
        if ok:  # quantizing changes the value exactly when digits would be lost
            try:
                quantized: Decimal | None = amount.quantize(minor_unit(exponent))
            except InvalidOperation:  # a policy's max_amount let through more than 28 digits
                bad("amount", "must have at most 28 digits at the currency's scale", "digits")
                return None
            lost = quantized != amount
        else:  # out of range, the quantum could overflow: count the digits instead
            quantized, lost = None, decimal_places(amount) > exponent
        if lost:
            bad(
                "amount",
                f"{currency} allows {exponent} decimal place(s); "
                "amounts are never rounded silently",
                "too_many_decimals",
            )
            return None
        return quantized

    def _check_idempotency_key(self, value: object, bad: Any) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            bad("idempotency_key", "must be a string", "type")
        elif not 1 <= len(value) <= self.max_idempotency_key_length:
            bad(
                "idempotency_key",
                f"must be 1 to {self.max_idempotency_key_length} characters",
                "length",
            )
        elif not _PRINTABLE_ASCII.fullmatch(value):
            bad("idempotency_key", "must be printable ASCII", "charset")

    def _check_metadata(self, value: object, bad: Any) -> dict[str, str]:
        if not isinstance(value, Mapping):
            bad("metadata", "must be a mapping of strings to strings", "type")
            return {}
        if len(value) > self.max_metadata_items:
            bad("metadata", f"must have at most {self.max_metadata_items} pairs", "too_many")
            return {}
        result: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not 1 <= len(key) <= self.max_metadata_key_length:
                bad(
                    "metadata",
                    f"keys must be strings of 1 to {self.max_metadata_key_length} characters",
                    "key",
                )
                continue
            name = f"metadata.{key}" if key.isprintable() else "metadata"
            if _CONTROL.search(key):
                bad(name, "keys must not contain control characters or lone surrogates", "control")
            elif not isinstance(item, str):
                bad(name, "values must be strings", "type")
            elif len(item) > self.max_metadata_value_length:
                bad(
                    name,
                    f"values must be at most {self.max_metadata_value_length} characters",
                    "too_long",
                )
            elif _CONTROL_IN_TEXT.search(item):
                bad(
                    name, "values must not contain control characters or lone surrogates", "control"
                )
            else:
                result[key] = item
        return result


def parse_payment_id(value: object, field: str = "payment_id") -> UUID:
    """Read a payment id from a UUID or its string form."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and len(value) <= 45:
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ValidationError([FieldError(field, "must be a UUID", "uuid")])


def same_request(existing: Payment, valid: ValidPayment, key: str) -> None:
    """Check that a repeat under ``key`` asks for what ``existing`` was created with.

    Raises:
        IdempotencyConflict: it differs, naming the fields that do.
    """
    differences = [
        name
        for name, ours, theirs in (
            ("customer_id", valid.customer_id, existing.customer_id),
            ("amount", valid.amount, existing.amount),
            ("currency", valid.currency, existing.currency),
            ("metadata", valid.metadata, dict(existing.metadata)),
        )
        if ours != theirs
    ]
    if differences:
        raise IdempotencyConflict(key, "differs in " + ", ".join(differences))


def same_refund(done: Operation, amount: object, reason: object, key: str) -> Operation:
    """``done`` if a repeat under ``key`` asks for the same refund; else a conflict.

    A repeat without an amount asks for "what was left at the first call": the same.
    """
    differences = []
    if amount is not None:
        asked = parse_amount(amount)
        if isinstance(asked, str) or asked != done.amount:
            differences.append("amount")
    if reason != done.reason:
        differences.append("reason")
    if differences:
        raise IdempotencyConflict(key, "differs in " + ", ".join(differences))
    return done


def check_filters(
    status: object, customer_id: object, errors: list[FieldError]
) -> PaymentStatus | None:
    """The status a listing filters on; problems with either filter go to ``errors``."""
    wanted: PaymentStatus | None = None
    if status is not None:
        try:
            wanted = PaymentStatus(str(status))
        except ValueError:
            allowed = ", ".join(s.value for s in PaymentStatus)
            errors.append(FieldError("status", f"must be one of {allowed}", "choice"))
    if customer_id is not None and (
        not isinstance(customer_id, str)
        or not 1 <= len(customer_id) <= 100
        or not customer_id.isprintable()
    ):
        errors.append(FieldError("customer_id", "must be 1 to 100 printable characters", "length"))
    return wanted


def check_period(created_from: object, created_to: object, errors: list[FieldError]) -> None:
    """A creation period: timezone-aware datetimes, ``created_from`` before ``created_to``."""
    for name, value in (("created_from", created_from), ("created_to", created_to)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            errors.append(FieldError(name, "must be a timezone-aware datetime", "type"))
            return
    if (
        isinstance(created_from, datetime)
        and isinstance(created_to, datetime)
        and created_from >= created_to
    ):
        errors.append(FieldError("created_to", "must be later than created_from", "range"))


def parse_ids(payment_ids: Iterable[object]) -> list[UUID]:
    """Distinct payment ids, in order; one ``ValidationError`` lists every bad one."""
    ids: dict[UUID, None] = {}
    errors: list[FieldError] = []
    if isinstance(payment_ids, str | bytes) or not isinstance(payment_ids, Iterable):
        raise ValidationError([FieldError("payment_ids", "must be a list of UUIDs", "type")])
    for index, value in enumerate(payment_ids):
        try:
            ids[parse_payment_id(value, f"payment_ids[{index}]")] = None
        except ValidationError as exc:
            errors.extend(exc.errors)
    if len(ids) > MAX_BULK_IDS:
        errors.append(FieldError("payment_ids", f"at most {MAX_BULK_IDS} ids", "too_many"))
    if errors:
        raise ValidationError(errors)
    return list(ids)
