"""The books: a double-entry journal of every money movement, pure.

A payment's money stands in five kinds of account: what its customer owes (receivable),
what is owed to the merchant (payable), what a processor holds in transit (clearing),
late-fee income (fees) and losses (writeoffs). ``standing`` says how much of each a
payment and its plan account for at a moment; a change's journal entry is the
difference between its standing after and before, so every movement posts by the same
rule, whatever action made it, and every entry balances by construction.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import attrs

from paymentorch.domain.ids import uuid7
from paymentorch.domain.payment import Payment, money_text
from paymentorch.domain.plans import RUNNING, InstallmentStatus, Plan, PlanStatus

_ZERO = Decimal(0)
MANUAL: Final = "manual"
"""The clearing account's owner for money moved by hand or inline."""
DEFAULT_MERCHANT: Final = "default"
"""The payable account's owner until merchants exist."""


class AccountKind(enum.StrEnum):
    """What an account holds."""

    RECEIVABLE = "receivable"
    PAYABLE = "payable"
    CLEARING = "clearing"
    FEES = "fees"
    WRITEOFFS = "writeoffs"


HOUSE: Final = frozenset({AccountKind.FEES, AccountKind.WRITEOFFS})
"""Accounts of the house: their owner is ``""``."""


@attrs.frozen
class Account:
    """One account.

    Attributes:
        kind: What it holds.
        owner: A customer (receivable), a merchant (payable, ``"default"``), a processor
            (clearing, ``"manual"`` for money moved by hand or inline), or ``""`` for the
            house's fees and writeoffs.
        currency: ISO 4217 code.
    """

    kind: AccountKind
    owner: str
    currency: str


@attrs.frozen
class Posting:
    """One line of a journal entry: a debit is positive, a credit negative."""

    account: Account
    amount: Decimal


@attrs.frozen
class JournalEntry:
    """A balanced record of one money movement; never updated or deleted.

    Attributes:
        id: Time-ordered UUID.
        payment_id: The payment the movement belongs to.
        operation_id: The Operation that moved the money, or None.
        kind: ``capture``, ``installment``, ``refund``, ``late_fee``, ``waiver``,
            ``write_off``, ``recovery`` or ``opening``.
        at: When (the service clock's time).
        correlation_id: The request that made it, if known.
        lines: Its postings; they sum to zero in each currency.
    """

    id: UUID
    payment_id: UUID
    operation_id: UUID | None
    kind: str
    at: datetime
    lines: tuple[Posting, ...]
    correlation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values: amounts as exact strings at the currency's scale."""
        return {
            "id": str(self.id),
            "payment_id": str(self.payment_id),
            "operation_id": None if self.operation_id is None else str(self.operation_id),
            "kind": self.kind,
            "at": self.at.isoformat(),
            "correlation_id": self.correlation_id,
            "lines": [
                {
                    "account": {
                        "kind": p.account.kind.value,
                        "owner": p.account.owner,
                        "currency": p.account.currency,
                    },
                    "amount": money_text(p.amount, p.account.currency),
                }
                for p in self.lines
            ],
        }


@attrs.frozen
class Standing:
    """What one payment and its plan account for, in the payment's currency.

    Attributes:
        payable: What is owed to the merchant: captured less refunded.
        receivable: What the customer still owes on a running plan: unpaid installments
            and unpaid fees.
        fees: Late fees charged, paid or not.
        written_off: What was forgiven or given up on: waived installments and fees, and
            what a charged-off plan still owes (a recovery takes it back).
        collected: What came in from the customer: the capture of a plain payment, the
            installments and fees paid on a plan.
        returned: What went back to the customer.
    """

    payable: Decimal = _ZERO
    receivable: Decimal = _ZERO
    fees: Decimal = _ZERO
    written_off: Decimal = _ZERO
    collected: Decimal = _ZERO
    returned: Decimal = _ZERO


NOTHING: Final = Standing()


def standing(payment: Payment | None, plan: Plan | None = None) -> Standing:
    """What ``payment`` (with its ``plan``, if it has one) accounts for now."""
    if payment is None:
        return NOTHING
    payable = payment.captured_amount - payment.refunded_amount
    if plan is None:
        return Standing(
            payable=payable,
            collected=payment.captured_amount,
            returned=payment.refunded_amount,
        )
    paid = [i for i in plan.installments if i.status is InstallmentStatus.PAID]
    owed = plan.owed + plan.fees_owed
    return Standing(
        payable=payable,
        receivable=owed if plan.status in RUNNING else _ZERO,
        fees=sum((f.amount for f in plan.late_fees), _ZERO),
        written_off=sum(
            (i.amount for i in plan.installments if i.status is InstallmentStatus.CANCELLED),
            _ZERO,
        )
        + sum((f.amount for f in plan.late_fees if f.waived_at is not None), _ZERO)
        + (owed if plan.status is PlanStatus.CHARGED_OFF else _ZERO),
        collected=sum((i.amount for i in paid), _ZERO)
        + sum((f.amount for f in plan.late_fees if f.paid_at is not None), _ZERO),
        returned=sum((i.refunded_amount for i in plan.installments), _ZERO),
    )


# Accounts are values: the few that most entries post to (a merchant's payable, a
# processor's clearing) are made once, not once a line.
_account = functools.lru_cache(maxsize=1024)(Account)


def postings(
    before: Standing,
    after: Standing,
    *,
    customer: str,
    currency: str,
    clearing: str = MANUAL,
    merchant: str = DEFAULT_MERCHANT,
) -> tuple[Posting, ...]:
    """The lines that take a payment's books from ``before`` to ``after``: nothing when
    no money moved. ``clearing`` owns the money in transit (a processor's name)."""
    moves = (
        (AccountKind.RECEIVABLE, customer, after.receivable - before.receivable),
        (
            AccountKind.CLEARING,
            clearing,
            (after.collected - before.collected) - (after.returned - before.returned),
        ),
        (AccountKind.WRITEOFFS, "", after.written_off - before.written_off),
        (AccountKind.FEES, "", before.fees - after.fees),
        (AccountKind.PAYABLE, merchant, before.payable - after.payable),
    )
    lines = [
        Posting(_account(kind, owner, currency), amount) for kind, owner, amount in moves if amount
    ]
    return tuple(lines)


def plain_postings(
    before: Payment | None,
    after: Payment,
    *,
    clearing: str = MANUAL,
    merchant: str = DEFAULT_MERCHANT,
) -> tuple[Posting, ...]:
    """``postings`` of a payment without a plan, from ``before`` (None: it did not exist)
    to ``after``: what came in less what went back moves from clearing to payable."""
    collected, returned = after.captured_amount, after.refunded_amount
    if before is not None:  # differences first: each is exact where a sum might round
        collected -= before.captured_amount
        returned -= before.refunded_amount
    moved = collected - returned
    if not moved:
        return ()
    currency = after.currency
    return (
        Posting(_account(AccountKind.CLEARING, clearing, currency), moved),
        Posting(_account(AccountKind.PAYABLE, merchant, currency), -moved),
    )


def journal_entry(
    kind: str,
    payment_id: UUID,
    lines: Sequence[Posting],
    *,
    at: datetime,
    operation_id: UUID | None = None,
    correlation_id: str | None = None,
    entry_id: UUID | None = None,
) -> JournalEntry | None:
    """An entry of ``lines`` (its id ``entry_id``, or a new one), or None when they are
    none.

    Raises:
        ValueError: the lines do not balance (a bug: entries balance by construction).
    """
    if not lines:
        return None
    unbalanced = imbalance(lines)
    if unbalanced:
        raise ValueError(f"a {kind} entry of payment {payment_id} is off by {unbalanced}")
    key = uuid7() if entry_id is None else entry_id
    return JournalEntry(key, payment_id, operation_id, kind, at, tuple(lines), correlation_id)


def imbalance(lines: Sequence[Posting]) -> dict[str, Decimal]:
    """How far ``lines`` are from summing to zero, by currency (empty when they balance)."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        currency = line.account.currency
        totals[currency] = totals.get(currency, _ZERO) + line.amount
    return {currency: total for currency, total in totals.items() if total}


def balances(entries: Sequence[JournalEntry]) -> Mapping[Account, Decimal]:
    """Each account's balance (debits less credits) over ``entries``."""
    found: dict[Account, Decimal] = {}
    for entry in entries:
        for line in entry.lines:
            found[line.account] = found.get(line.account, _ZERO) + line.amount
    return found
