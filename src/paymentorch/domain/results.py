"""What the service's read and bulk operations return."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from uuid import UUID

import attrs

from paymentorch.domain.payment import Payment


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
