"""A plan and its parts: terms, installments, late fees and their statuses."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import attrs

from paymentorch.domain.errors import FieldError, ValidationError

_ZERO = Decimal(0)
MAX_INTERVAL = timedelta(days=366)
"""The longest interval between installments (60 of them then span 59 years)."""


@attrs.frozen
class PlanTerms:
    """How an order becomes installments.

    Attributes:
        installments: How many (2 to 60); the first is due at purchase.
        interval: Between due dates (whole seconds, more than zero and at most 366 days;
            two weeks by default).
        remainder: Which installment takes the minor units an even split leaves over:
            ``first`` (Afterpay: $57.27 is 14.32, 14.32, 14.32, 14.31) or ``last``.
        refund_allocation: How a refund reduces what is owed: ``last_first`` (Afterpay:
            from the last installment backwards) or ``even`` (Klarna: spread evenly over
            the unpaid installments).
    """

    installments: int = 4
    interval: timedelta = timedelta(days=14)
    remainder: Literal["first", "last"] = "first"
    refund_allocation: Literal["last_first", "even"] = "last_first"

    def __attrs_post_init__(self) -> None:
        errors = []
        count = self.installments
        if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= 60:
            errors.append(
                FieldError("installments", "must be a whole number from 2 to 60", "range")
            )
        interval = self.interval
        if (
            not isinstance(interval, timedelta)
            or interval <= timedelta(0)
            or interval > MAX_INTERVAL
            or interval % timedelta(seconds=1)
        ):
            message = "must be a timedelta of whole seconds, longer than 0 and at most 366 days"
            errors.append(FieldError("interval", message, "range"))
        if self.remainder not in ("first", "last"):
            errors.append(FieldError("remainder", "must be 'first' or 'last'", "choice"))
        if self.refund_allocation not in ("last_first", "even"):
            errors.append(
                FieldError("refund_allocation", "must be 'last_first' or 'even'", "choice")
            )
        if errors:
            raise ValidationError(errors)


class InstallmentStatus(enum.StrEnum):
    """Where one installment is."""

    SCHEDULED = "scheduled"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"


UNPAID = frozenset({InstallmentStatus.SCHEDULED, InstallmentStatus.OVERDUE})


@attrs.frozen
class Installment:
    """One installment of a plan.

    Attributes:
        number: From 1; installment 1 is due at purchase.
        amount: What it asks for now (a refund may have reduced it; 0 once cancelled).
        due_at: When it is due (UTC).
        status: ``scheduled``, ``paid``, ``overdue`` or ``cancelled``.
        paid_at: When it was paid.
        refunded_amount: What refunds gave back against it, once paid.
        attempts: How many collections of it were sent to the processor.
        next_attempt_at: When the retry ladder collects it next, after a soft decline;
            None before the first attempt, after a success and once collection stopped.
        last_decline: The processor's code of its last declined collection.
        reminded: The smallest reminder offset (before ``due_at``) written for it.
        ladder_start: ``attempts`` when its retry ladder last started (a person resumed
            collection since).
    """

    number: int
    amount: Decimal
    due_at: datetime
    status: InstallmentStatus = InstallmentStatus.SCHEDULED
    paid_at: datetime | None = None
    refunded_amount: Decimal = _ZERO
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_decline: str | None = None
    reminded: timedelta | None = None
    ladder_start: int = 0

    @property
    def unpaid(self) -> bool:
        """Whether it is still owed (scheduled or overdue)."""
        return self.status in UNPAID


class PlanStatus(enum.StrEnum):
    """Where a plan is."""

    PENDING = "pending"
    ACTIVE = "active"
    DELINQUENT = "delinquent"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    CHARGED_OFF = "charged_off"


RUNNING = frozenset({PlanStatus.ACTIVE, PlanStatus.DELINQUENT})
"""Plans whose installments are collected, go overdue and are paid."""
ACCEPTS_PAYMENT = RUNNING | {PlanStatus.CHARGED_OFF}
"""Plans whose installments may still be paid: running ones, and charged-off ones (a
payment then is a recovery)."""


@attrs.frozen
class LateFee:
    """A late fee charged on a plan. It belongs to its installment: the installment's next
    collection takes it too, and waiving the installment waives it.

    Attributes:
        installment: The installment that was late.
        amount: What the fee is.
        charged_at: When it was charged.
        paid_at: When it was paid, with its installment.
        waived_at: When it was waived: with its installment, or because a refund
            cancelled that installment.
    """

    installment: int
    amount: Decimal
    charged_at: datetime
    paid_at: datetime | None = None
    waived_at: datetime | None = None

    @property
    def unpaid(self) -> bool:
        """Whether it is still owed."""
        return self.paid_at is None and self.waived_at is None


@attrs.frozen
class Plan:
    """A payment's installment plan.

    Attributes:
        payment_id: The payment (the order) it belongs to.
        order_amount: The order's amount.
        currency: The order's currency.
        terms: The terms it was made with.
        status: ``pending`` until the payment is confirmed, then ``active``,
            ``delinquent`` while an installment is overdue, ``completed`` when nothing is
            owed, ``cancelled`` when the whole order was refunded; ``charged_off`` when
            collection was given up and what was owed written off (for good: later
            payments are recoveries).
        installments: In order.
        late_fees: Charged so far, oldest first.
        collection_stopped: Automatic collection stopped (a hard decline, or the retry
            ladder ran out): a person pays, waives, charges off or resumes it.
    """

    payment_id: UUID
    order_amount: Decimal
    currency: str
    terms: PlanTerms
    status: PlanStatus
    installments: tuple[Installment, ...]
    late_fees: tuple[LateFee, ...] = ()
    collection_stopped: bool = False

    def installment(self, number: int) -> Installment | None:
        """Installment ``number``, or None."""
        return next((i for i in self.installments if i.number == number), None)

    @property
    def owed(self) -> Decimal:
        """What the customer still owes, late fees aside."""
        return sum((i.amount for i in self.installments if i.unpaid), _ZERO)

    @property
    def fees_owed(self) -> Decimal:
        """The late fees still owed."""
        return sum((f.amount for f in self.late_fees if f.unpaid), _ZERO)

    def days_past_due(self, now: datetime) -> int:
        """Whole days (rounded down) since the oldest unpaid installment fell due; 0 when
        none has."""
        due = [i.due_at for i in self.installments if i.unpaid and i.due_at <= now]
        return (now - min(due)).days if due else 0

    def collection_amount(self, number: int) -> Decimal:
        """What collecting installment ``number`` takes: its amount and its unpaid fees."""
        installment = installment_of(self, number)
        fees = (f.amount for f in self.late_fees if f.installment == number and f.unpaid)
        return installment.amount + sum(fees, _ZERO)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values: amounts as exact strings, times in ISO 8601."""
        return {
            "payment_id": str(self.payment_id),
            "status": self.status.value,
            "order_amount": str(self.order_amount),
            "currency": self.currency,
            "owed": str(self.owed),
            "collection_stopped": self.collection_stopped,
            "installments": [
                {
                    "number": i.number,
                    "amount": str(i.amount),
                    "due_at": i.due_at.isoformat(),
                    "status": i.status.value,
                    "paid_at": _iso(i.paid_at),
                    "refunded_amount": str(i.refunded_amount),
                    "attempts": i.attempts,
                    "next_attempt_at": _iso(i.next_attempt_at),
                    "last_decline": i.last_decline,
                }
                for i in self.installments
            ],
            "fees_owed": str(self.fees_owed),
            "late_fees": [
                {
                    "installment": f.installment,
                    "amount": str(f.amount),
                    "charged_at": f.charged_at.isoformat(),
                    "paid_at": _iso(f.paid_at),
                    "waived_at": _iso(f.waived_at),
                }
                for f in self.late_fees
            ],
        }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def installment_of(plan: Plan, number: int) -> Installment:
    """Installment ``number`` of ``plan``.

    Raises:
        ValidationError: the plan has no such installment.
    """
    for installment in plan.installments:
        if installment.number == number:
            return installment
    raise ValidationError(
        [FieldError("number", f"the plan has no installment {number}", "missing")]
    )
