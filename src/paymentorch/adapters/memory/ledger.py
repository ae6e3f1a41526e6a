"""The in-memory store's books: each payment's journal, each account's balance, and the
records the integrity check reads."""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import Any
from uuid import UUID

from paymentorch.adapters.memory.outbox import MemoryOutbox
from paymentorch.domain import AuditEntry, Change, Payment, PaymentStatus
from paymentorch.domain.credit import exposure_of
from paymentorch.domain.integrity import PaymentRecords
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry, Posting
from paymentorch.domain.money import at_scale
from paymentorch.domain.plans import Plan

_ZERO = Decimal(0)
Trail = tuple[Any, ...]
"""A payment's audit trail as the store keeps it: each entry's fields, then its event's
id, as plain values in one flat tuple. The garbage collector stops walking a tuple of
plain values; a million payments' trails would otherwise be most of what it walks."""
_FIELDS = 8  # of an entry in a trail


def with_entry(trail: Trail, change: Change) -> Trail:
    """``trail`` followed by the change's audit entry and event."""
    entry = change.audit
    before = None if entry.from_status is None else entry.from_status.value
    return (
        *trail, entry.action, before, entry.to_status.value, entry.actor_id, entry.at,
        entry.reason, entry.correlation_id, change.event.id.int,
    )  # fmt: skip


def entries(payment_id: UUID, trail: Trail) -> list[AuditEntry]:
    """The audit entries of ``trail``, oldest first."""
    rows = zip(*[iter(trail)] * _FIELDS, strict=True)
    return [
        AuditEntry(payment_id, action, _status(before), PaymentStatus(after), *rest)
        for action, before, after, *rest, _ in rows
    ]


def _status(value: str | None) -> PaymentStatus | None:
    return None if value is None else PaymentStatus(value)


def event_ids(trail: Trail) -> list[UUID]:
    """The ids of the events of ``trail``, oldest first."""
    return [UUID(int=number) for number in trail[_FIELDS - 1 :: _FIELDS]]


Books = tuple[Any, ...]
"""A payment's journal as the store keeps it, flat as a ``Trail``: each entry's id,
operation id, kind, time, correlation id and number of lines, then each line's account
(kind, owner, currency) and amount."""
_HEAD, _LINE = 6, 4  # values of an entry's fields, and of each of its lines


def with_journal_entry(books: Books, entry: JournalEntry) -> Books:
    """``books`` followed by ``entry``."""
    operation = entry.operation_id
    lines = [
        value
        for line in entry.lines
        for value in (line.account.kind.value, line.account.owner, line.account.currency,
                      line.amount)
    ]  # fmt: skip
    return (
        *books, entry.id.int, None if operation is None else operation.int, entry.kind,
        entry.at, entry.correlation_id, len(entry.lines), *lines,
    )  # fmt: skip


def journal_entries(payment_id: UUID, books: Books) -> list[JournalEntry]:
    """The journal entries of ``books``, oldest first."""
    found = []
    start = 0
    while start < len(books):
        key, operation, kind, at, correlation_id, count = books[start : start + _HEAD]
        start += _HEAD
        end = start + count * _LINE
        lines = tuple(
            Posting(Account(AccountKind(books[i]), books[i + 1], books[i + 2]), books[i + 3])
            for i in range(start, end, _LINE)
        )
        start = end
        operation_id = None if operation is None else UUID(int=operation)
        found.append(
            JournalEntry(UUID(int=key), payment_id, operation_id, kind, at, lines, correlation_id)
        )
    return found


class MemoryLedger(MemoryOutbox):
    """The journal of ``InMemoryPaymentStore``: entries by payment, and a running balance
    by account (one process: nothing to contend for). The store posts each change's
    entry, and notes its audit entry's event, under the lock it writes the change with."""

    _payments: dict[UUID, Payment]
    _audit: dict[UUID, Trail]
    _plans: dict[UUID, Plan]
    _exposure: dict[tuple[str, str], Decimal]

    def __init__(self) -> None:
        super().__init__()
        self._journal: dict[UUID, Books] = {}
        self._balances: dict[Account, Decimal] = {}
        self._sorted_ids: list[UUID] = []

    def _post(self, change: Change) -> None:
        """Keep the change's journal entry (the caller holds the lock)."""
        pid = change.payment.id
        entry = change.journal
        if entry is None:
            return
        self._journal[pid] = with_journal_entry(self._journal.get(pid, ()), entry)
        for line in entry.lines:
            self._balances[line.account] = self._balances.get(line.account, _ZERO) + line.amount

    async def journal(self, payment_id: UUID) -> list[JournalEntry]:
        """The payment's journal entries, oldest first."""
        with self._lock:
            self._open()
            return journal_entries(payment_id, self._journal.get(payment_id, ()))

    async def balance(self, account: Account) -> Decimal:
        """Debits less credits of ``account``."""
        with self._lock:
            self._open()
            return at_scale(self._balances.get(account, _ZERO), account.currency)

    async def trial_balance(self) -> dict[tuple[AccountKind, str], Decimal]:
        """Totals by account kind and currency."""
        totals: dict[tuple[AccountKind, str], Decimal] = {}
        with self._lock:
            self._open()
            for account, amount in self._balances.items():
                key = (account.kind, account.currency)
                totals[key] = totals.get(key, _ZERO) + amount
        return {key: at_scale(amount, key[1]) for key, amount in totals.items()}

    async def payment_records(self, *, after: UUID | None, limit: int) -> list[PaymentRecords]:
        """Up to ``limit`` payments after ``after`` in id order, with their records."""
        with self._lock:
            self._open()
            ordered = self._ids_in_order()
            start = 0 if after is None else bisect.bisect_right(ordered, after)
            ids = ordered[start : start + limit]
            waiting = self._waiting_events(set(ids))
            return [self._records(pid, waiting.get(pid, set())) for pid in ids]

    def _records(self, pid: UUID, waiting: set[UUID]) -> PaymentRecords:
        trail = self._audit.get(pid, ())
        ids = event_ids(trail)
        return PaymentRecords(
            payment=self._payments[pid],
            audit=entries(pid, trail),
            events=frozenset(e for e in ids if e in self._delivered) | waiting,
            event_ids=ids,
            journal=journal_entries(pid, self._journal.get(pid, ())),
            plan=self._plans.get(pid),
        )

    def _ids_in_order(self) -> list[UUID]:
        """Every payment id, sorted: kept between calls, so that reading the store in
        batches sorts it once, not once a batch (payments are never removed: a list as
        long as the map is current)."""
        if len(self._sorted_ids) != len(self._payments):
            self._sorted_ids = sorted(self._payments)
        return self._sorted_ids

    async def exposure_differences(self) -> list[tuple[str, str, Decimal, Decimal]]:
        """Each customer whose stored exposure is not what its payments and plans owe."""
        with self._lock:
            self._open()
            owed: dict[tuple[str, str], Decimal] = {}
            for payment in self._payments.values():
                if amount := exposure_of(payment, self._plans.get(payment.id)):
                    key = (payment.customer_id, payment.currency)
                    owed[key] = owed.get(key, _ZERO) + amount
            found = []
            for key in self._exposure.keys() | owed.keys():
                stored, wanted = self._exposure.get(key, _ZERO), owed.get(key, _ZERO)
                if stored != wanted:
                    found.append((*key, stored, wanted))
            return found
