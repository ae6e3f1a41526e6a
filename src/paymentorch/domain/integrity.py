"""The integrity check, pure: what a payment's stored records must agree on.

``verify`` reads the store in batches (``PaymentRecords``) and asks these functions what
does not agree: the payment against its audit trail, its events, its journal and its
plan. Nothing here reads or writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from uuid import UUID

import attrs

from paymentorch.domain.ledger import (
    NOTHING,
    AccountKind,
    JournalEntry,
    imbalance,
    postings,
    standing,
)
from paymentorch.domain.payment import Payment
from paymentorch.domain.plans import InstallmentStatus, Plan, PlanStatus
from paymentorch.domain.records import AuditEntry

_ZERO = Decimal(0)
_Add = Callable[[str, str], None]  # how the checks of one payment report what they find
CHECKS = ("status", "audit", "events", "journal", "plan", "exposure")
"""The checks ``verify`` runs, as ``Problem.check`` names them."""


@attrs.frozen
class Problem:
    """One thing that does not agree.

    Attributes:
        payment_id: The payment it is about (None for the books as a whole, or a
            customer's exposure).
        check: ``status``, ``audit``, ``events``, ``journal``, ``plan`` or ``exposure``.
        detail: What does not agree, for a person.
    """

    payment_id: UUID | None
    check: str
    detail: str

    def to_dict(self) -> dict[str, str | None]:
        """JSON-safe values."""
        return {
            "payment_id": None if self.payment_id is None else str(self.payment_id),
            "check": self.check,
            "detail": self.detail,
        }


@attrs.frozen
class IntegrityReport:
    """What ``verify`` found.

    ``ok`` says whether nothing disagrees.

    Attributes:
        checked: How many payments were checked.
        problems: Everything that disagrees, payment by payment, then the books.
    """

    checked: int
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether nothing disagrees."""
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        """JSON-safe values, as ``paymentorch verify --json`` prints them."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problems": [p.to_dict() for p in self.problems],
        }


@attrs.frozen
class PaymentRecords:
    """What the store keeps of one payment, read together for the check.

    Attributes:
        payment: The payment.
        audit: Its audit trail, oldest first.
        events: The ids of its events the store still holds or delivered; None when the
            store cannot tell (a delivered event left no trace).
        event_ids: The event each audit entry was written with (None where unknown: an
            entry written before events were linked to their entries).
        journal: Its journal entries, oldest first.
        plan: Its plan, if it has one.
    """

    payment: Payment
    audit: Sequence[AuditEntry]
    events: frozenset[UUID] | None
    event_ids: Sequence[UUID | None]
    journal: Sequence[JournalEntry]
    plan: Plan | None = None


def problems_of(records: PaymentRecords) -> list[Problem]:
    """Everything about one payment that does not agree."""
    found: list[Problem] = []
    pid = records.payment.id

    def add(check: str, detail: str) -> None:
        found.append(Problem(pid, check, detail))

    _status_and_audit(records, add)
    _events(records, add)
    _journal(records, add)
    if records.plan is not None:
        for detail in plan_problems(records.plan):
            add("plan", detail)
    return found


def _status_and_audit(records: PaymentRecords, add: _Add) -> None:
    payment, trail = records.payment, records.audit
    if not trail:
        add("audit", "no audit entry: every payment has its creation's")
        return
    if trail[-1].to_status is not payment.status:
        add(
            "status",
            f"is {payment.status.value}, its last audit entry says {trail[-1].to_status.value}",
        )
    if len(trail) != payment.version:
        add("audit", f"version {payment.version}, but {len(trail)} audit entries")
    if trail[0].from_status is not None:
        add("audit", "the first audit entry is not its creation")
    for before, after in itertools.pairwise(trail):
        if after.from_status is not before.to_status:
            add(
                "audit",
                f"an entry ({after.action}, {after.at.isoformat()}) starts from"
                f" {_name(after.from_status)}, the one before ended at {before.to_status.value}",
            )


def _events(records: PaymentRecords, add: _Add) -> None:
    if records.events is None:
        return
    missing = [
        entry
        for entry, event_id in zip(records.audit, records.event_ids, strict=False)
        if event_id is not None and event_id not in records.events
    ]
    for entry in missing:
        add("events", f"the {entry.action} entry of {entry.at.isoformat()} has no event")


_HOLDS = {
    AccountKind.PAYABLE: "captured less refunded",
    AccountKind.RECEIVABLE: "what its running plan still owes",
    AccountKind.CLEARING: "what came in less what went back",
    AccountKind.FEES: "the late fees charged",
    AccountKind.WRITEOFFS: "what was waived or charged off, less what was recovered",
}
"""What each kind of account holds of one payment, for a person reading a problem."""


def _journal(records: PaymentRecords, add: _Add) -> None:
    payment = records.payment
    for entry in records.journal:
        if off := imbalance(entry.lines):
            add("journal", f"the {entry.kind} entry {entry.id} does not balance: {off}")
    totals: dict[AccountKind, Decimal] = {}
    for entry in records.journal:
        for line in entry.lines:
            totals[line.account.kind] = totals.get(line.account.kind, _ZERO) + line.amount
    # What the journal should hold: the postings from nothing to the payment's standing now.
    lines = postings(NOTHING, standing(payment, records.plan), customer=payment.customer_id,
                     currency=payment.currency)  # fmt: skip
    expected = {line.account.kind: line.amount for line in lines}
    for kind, what in _HOLDS.items():
        found, wanted = totals.get(kind, _ZERO), expected.get(kind, _ZERO)
        if found != wanted:
            add("journal", f"its {kind} postings total {found}; {what}: {wanted}")


def plan_problems(plan: Plan) -> list[str]:
    """What does not agree within a plan: its installments add up to the order, less what
    refunds took off; its status is what its installments and fees make it."""
    problems = []
    refunded = sum((i.refunded_amount for i in plan.installments), _ZERO)
    for installment in plan.installments:
        if installment.amount < 0 or installment.refunded_amount < 0:
            problems.append(f"installment {installment.number} has a negative amount")
        if installment.refunded_amount > installment.amount:
            problems.append(f"installment {installment.number} returned more than was paid")
    unpaid = [i for i in plan.installments if i.unpaid]
    fees_unpaid = any(f.unpaid for f in plan.late_fees)
    overdue = any(i.status is InstallmentStatus.OVERDUE for i in unpaid)
    if plan.status is PlanStatus.PENDING:
        if any(i.status is InstallmentStatus.PAID for i in plan.installments):
            problems.append("is pending, yet an installment is paid")
    elif plan.status in (PlanStatus.ACTIVE, PlanStatus.DELINQUENT):
        if not unpaid and not fees_unpaid:
            problems.append(f"is {plan.status.value}, yet nothing is owed")
        elif (plan.status is PlanStatus.DELINQUENT) != overdue:
            problems.append(f"is {plan.status.value}, yet overdue installments: {overdue}")
    elif plan.status is PlanStatus.CHARGED_OFF:
        pass  # written off whatever it still owes: recoveries may have paid some, or all
    elif unpaid or fees_unpaid:
        problems.append(f"is {plan.status.value}, yet something is still owed")
    if refunded < 0:
        problems.append("returned a negative amount")
    return problems


def exposure_problems(differences: Iterable[tuple[str, str, Decimal, Decimal]]) -> list[Problem]:
    """Customers whose stored exposure is not what their payments and plans owe, from
    ``(customer_id, currency, stored, owed)``."""
    return [
        Problem(None, "exposure", f"{customer} in {currency}: {stored} stored, {owed} owed")
        for customer, currency, stored, owed in sorted(differences)
    ]


def trial_balance_problems(totals: Mapping[tuple[AccountKind, str], Decimal]) -> list[Problem]:
    """Currencies whose postings do not sum to zero."""
    sums: dict[str, Decimal] = {}
    for (_kind, currency), amount in totals.items():
        sums[currency] = sums.get(currency, _ZERO) + amount
    return [
        Problem(None, "journal", f"the postings in {currency} sum to {total}, not 0")
        for currency, total in sorted(sums.items())
        if total
    ]


def _name(status: object) -> str:
    return "nothing" if status is None else str(getattr(status, "value", status))
