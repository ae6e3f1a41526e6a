"""What every use case shares: the store, the cache, the clock, the policies, the
processor and telemetry, and the reads through the cache."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Self
from uuid import UUID

import attrs
from opentelemetry import metrics, trace

from paymentorch._kinds import require_async
from paymentorch.domain import (
    FieldError,
    Payment,
    PaymentNotFound,
    RolePolicy,
    ValidationError,
    ValidationPolicy,
    parse_payment_id,
)
from paymentorch.domain.collections import CollectionPolicy
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.money import currency_exponent
from paymentorch.domain.plans import LateFeePolicy, Plan, fee_policies
from paymentorch.ports import Cache, PaymentProcessor, PaymentStore
from paymentorch.telemetry import Telemetry

logger = logging.getLogger("paymentorch")


@attrs.frozen
class Context:
    """One service's parts, as its use cases see them."""

    store: PaymentStore
    cache: Cache | None
    policy: RolePolicy
    validation: ValidationPolicy
    default_currency: str
    clock: Callable[[], datetime]
    telemetry: Telemetry
    lag_threshold: timedelta
    processor: PaymentProcessor | None
    credit: CreditPolicy | None
    late_fees: dict[str, LateFeePolicy]
    collections: CollectionPolicy | None = None

    @classmethod
    def build(
        cls, store: PaymentStore, *, cache: Cache | None, policy: RolePolicy | None,
        validation: ValidationPolicy | None, default_currency: str,
        clock: Callable[[], datetime], tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None, lag_threshold: timedelta,
        processor: PaymentProcessor | None, credit: CreditPolicy | None,
        late_fees: LateFeePolicy | Iterable[LateFeePolicy] | None,
        collections: CollectionPolicy | None = None,
    ) -> Self:  # fmt: skip
        """The parts of a service built with these arguments, each checked.

        Raises:
            ValidationError: ``default_currency`` is not an active ISO 4217 code.
            TypeError: a store or cache of the other kind (blocking or async), or
                ``collections`` that is not a ``CollectionPolicy``.
        """
        currency = default_currency.upper() if isinstance(default_currency, str) else ""
        if currency_exponent(currency) is None:
            message = f"{default_currency!r} is not an active ISO 4217 currency"
            raise bad("default_currency", message, "unknown")
        require_async(store, "store", "get")
        require_async(cache, "cache", "get")
        if collections is not None and not isinstance(collections, CollectionPolicy):
            raise TypeError(f"collections must be a CollectionPolicy, not {collections!r}")
        telemetry = Telemetry(
            backend=store.backend, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        return cls(
            store=store, cache=cache, policy=policy or RolePolicy(),
            validation=validation or ValidationPolicy(), default_currency=currency, clock=clock,
            telemetry=telemetry, lag_threshold=lag_threshold, processor=processor,
            credit=credit, late_fees=fee_policies(late_fees, currency), collections=collections,
        )  # fmt: skip

    # -- reads through the cache ------------------------------------------------

    async def load(self, pid: UUID) -> Payment:
        """The payment: from the cache, else the store (and then cached).

        Raises:
            PaymentNotFound: no payment has this id.
        """
        cached = await self._cache_get(pid)
        if cached is not None:
            return cached
        payment = await self.store.get(pid)
        if payment is None:
            raise PaymentNotFound(pid)
        await self.remember(payment)
        return payment

    async def read(self, pid: UUID, *, fresh: bool) -> Payment:
        """The payment: through the cache, or (``fresh``) from the store."""
        if not fresh:
            return await self.load(pid)
        await self.forget(pid)
        payment = await self.store.get(pid)
        if payment is None:
            raise PaymentNotFound(pid)
        return payment

    async def read_with_plan(self, pid: UUID) -> tuple[Payment, Plan | None]:
        """The payment and its plan, from the store, as of one moment.

        Raises:
            PaymentNotFound: no payment has this id.
        """
        await self.forget(pid)
        found = await self.store.get_with_plan(pid)
        if found is None:
            raise PaymentNotFound(pid)
        return found

    async def _cache_get(self, pid: UUID) -> Payment | None:
        if self.cache is None:
            return None
        try:
            return await self.cache.get(pid)
        except Exception:
            logger.warning("cache get failed; reading the store", exc_info=True)
            return None

    async def remember(self, payment: Payment) -> None:
        """Cache ``payment`` (a cache that fails is bypassed, and the entry evicted)."""
        if self.cache is not None:
            try:
                await self.cache.set(payment)
            except Exception:
                logger.warning("cache set failed; evicting", exc_info=True)
                await self.forget(payment.id)

    async def forget(self, pid: UUID) -> None:
        """Evict the payment from the cache."""
        if self.cache is not None:
            try:
                await self.cache.delete(pid)
            except Exception:
                logger.warning("cache delete failed", exc_info=True)

    # -- inputs -------------------------------------------------------------------

    def money(self, value: object, currency: str) -> Decimal:
        """An amount to capture, refund or collect.

        Raises:
            ValidationError: not an exact amount in range.
        """
        amount, errors = self.validation.check_money(value, currency)
        if amount is None:
            raise ValidationError(errors)
        return amount

    def id_and_reason(
        self, payment_id: object, reason: object, *, required: bool, checked: bool = True
    ) -> UUID:
        """The payment id, with the reason checked (when ``checked``) in the same error.

        Raises:
            ValidationError: every problem found.
        """
        errors = self.validation.check_reason(reason, required=required) if checked else []
        try:
            pid = parse_payment_id(payment_id)
        except ValidationError as exc:
            raise ValidationError([*exc.errors, *errors]) from None
        if errors:
            raise ValidationError(errors)
        return pid


def describe(payment: Payment) -> None:
    """Tag the current span with what may be known of ``payment``."""
    Telemetry.describe(trace.get_current_span(), payment)


def bad(field: str, message: str, code: str) -> ValidationError:
    """A ``ValidationError`` of one field."""
    return ValidationError([FieldError(field, message, code)])
