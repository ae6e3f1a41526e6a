"""The books: a payment's journal, an account's balance, the trial balance, and the
integrity check over everything the store keeps."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from paymentorch.domain import parse_payment_id
from paymentorch.domain.integrity import (
    IntegrityReport,
    Problem,
    exposure_problems,
    problems_of,
    trial_balance_problems,
)
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry
from paymentorch.domain.money import currency_exponent

from .context import Context, bad

BATCH = 500
"""Payments the integrity check reads at a time: its memory stays bounded."""


async def journal(ctx: Context, payment_id: UUID | str) -> list[JournalEntry]:
    """The payment's journal entries, oldest first (none for a payment that moved no money)."""
    pid = parse_payment_id(payment_id)
    entries = await ctx.store.journal(pid)
    if not entries:
        await ctx.read(pid, fresh=True)  # PaymentNotFound if there is no payment
    return entries


async def balance(ctx: Context, account: Account) -> Decimal:
    """Debits less credits of ``account`` (0 for one never posted to)."""
    if not isinstance(account, Account):
        raise bad("account", "must be an Account", "type")
    if not isinstance(account.kind, AccountKind):
        raise bad("account.kind", "must be an AccountKind", "choice")
    if not isinstance(account.owner, str) or "\x00" in account.owner:
        raise bad("account.owner", "must be text without NUL characters", "type")
    if not isinstance(account.currency, str) or currency_exponent(account.currency) is None:
        message = "must be an active ISO 4217 code in capitals, such as 'USD'"
        raise bad("account.currency", message, "unknown")
    return await ctx.store.balance(account)


async def trial_balance(ctx: Context) -> dict[tuple[AccountKind, str], Decimal]:
    """Totals by account kind and currency; they sum to zero in each currency."""
    return await ctx.store.trial_balance()


async def verify(ctx: Context, *, batch: int = BATCH) -> IntegrityReport:
    """Every payment's records against each other, in batches, then the books as a whole
    and each customer's exposure; reads only."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise bad("batch", "must be a whole number from 1", "range")
    checked, problems, after = 0, list[Problem](), None
    while records := await ctx.store.payment_records(after=after, limit=batch):
        for found in records:
            problems += problems_of(found)
        checked += len(records)
        after = records[-1].payment.id
    problems += trial_balance_problems(await ctx.store.trial_balance())
    problems += exposure_problems(await ctx.store.exposure_differences())
    return IntegrityReport(checked, tuple(problems))
