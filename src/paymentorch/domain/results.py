"""What the service's read and bulk operations return."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import attrs

from paymentorch.domain.money import currency_exponent, minor_unit
from paymentorch.domain.payment import Payment, PaymentStatus


@attrs.frozen
class Page:
    """One page of a listing.

    Attributes:
        items: Payments, newest first.
        next_cursor: Pass it back for the next page; None on the last page.
    """

    items: list[Payment]
    next_cursor: str | None


@attrs.frozen
class BulkResult:
    """The outcome of a bulk transition.

    Attributes:
        confirmed: The payments this call changed, in the order asked.
        skipped: Every other id asked for, with the reason it was left alone.
    """

    confirmed: list[Payment]
    skipped: dict[UUID, str]


HealthStatus = Literal["ok", "degraded", "down"]


@attrs.frozen
class HealthReport:
    """How the service is doing.

    Attributes:
        status: ``ok``, ``degraded`` or ``down``.
        checks: One mapping per check (``store``, ``outbox``) with its figures.
    """

    status: HealthStatus
    checks: Mapping[str, Mapping[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values."""
        return {"status": self.status, "checks": {k: dict(v) for k, v in self.checks.items()}}


@attrs.frozen
class SummaryRow:
    """Payments created on one day (UTC) with one status and currency.

    Attributes:
        day: The day they were created, in UTC.
        status: Their status now.
        currency: Their currency.
        count: How many.
        amount: Their amounts added up, exactly.
    """

    day: date
    status: PaymentStatus
    currency: str
    count: int
    amount: Decimal


@attrs.frozen
class PaymentSummary:
    """Payments at a glance: counts by status, totals by currency, counts by day.

    Attributes:
        by_status: How many payments have each status (every status, zeros included).
        totals: The amounts added up, by currency, whatever their status.
        days: Per day created (UTC, oldest first), how many have each status now.
    """

    by_status: Mapping[PaymentStatus, int]
    totals: Mapping[str, Decimal]
    days: list[tuple[date, Mapping[PaymentStatus, int]]]

    @classmethod
    def of(cls, rows: Iterable[SummaryRow]) -> PaymentSummary:
        """The summary of a store's summary rows."""
        by_status = dict.fromkeys(PaymentStatus, 0)
        totals: dict[str, Decimal] = {}
        days: dict[date, dict[PaymentStatus, int]] = {}
        for row in rows:
            by_status[row.status] += row.count
            totals[row.currency] = totals.get(row.currency, Decimal(0)) + row.amount
            day = days.setdefault(row.day, dict.fromkeys(PaymentStatus, 0))
            day[row.status] += row.count
        exact = {
            currency: amount.quantize(minor_unit(currency_exponent(currency) or 0))
            for currency, amount in sorted(totals.items())
        }
        return cls(by_status, exact, sorted(days.items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values: amounts as exact decimal strings, days as ISO dates."""
        return {
            "by_status": {s.value: n for s, n in self.by_status.items()},
            "totals": {c: str(a) for c, a in self.totals.items()},
            "days": [
                {"day": d.isoformat(), "by_status": {s.value: n for s, n in counts.items()}}
                for d, counts in self.days
            ],
        }
