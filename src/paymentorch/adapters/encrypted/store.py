"""A store that keeps the customer id and metadata values encrypted at rest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs

from paymentorch.crypto import FieldEncryption
from paymentorch.domain import (
    Change,
    CreditLimitExceeded,
    Operation,
    Payment,
    PaymentEvent,
    PaymentStatus,
)
from paymentorch.domain.cursor import Keyset
from paymentorch.domain.integrity import PaymentRecords
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry
from paymentorch.domain.outbox import OutboxMessage
from paymentorch.domain.plans import Plan
from paymentorch.domain.requests import KeyedChange
from paymentorch.domain.results import SummaryRow
from paymentorch.domain.transitions import Stepped, Transition
from paymentorch.ports import PaymentStore


class EncryptedStore:
    """``store`` with the customer id and metadata values sealed by ``encryption``
    wherever they rest: payments, event snapshots in the outbox, and exposure (by blind
    index). What goes in is sealed, what comes out is opened; filters by customer use
    the blind index, so the store's customer index still serves them.

    ``open_service(url, encryption=...)`` puts it in front of the backend's store.
    """

    def __init__(self, store: PaymentStore, encryption: FieldEncryption) -> None:
        self.inner = store
        self.encryption = encryption
        self.backend = store.backend

    # -- in: sealed ------------------------------------------------------------------

    def _seal(self, change: Change) -> Change:
        p = change.payment
        index, metadata = self.encryption.seal(p.id, p.customer_id, p.metadata)
        return attrs.evolve(
            change,
            payment=attrs.evolve(p, customer_id=index, metadata=metadata),
            event=self._seal_event(change.event),
            more_events=tuple(self._seal_event(e) for e in change.more_events),
            journal=change.journal and _owned(change.journal, p.customer_id, index),
        )

    def _seal_event(self, event: PaymentEvent) -> PaymentEvent:
        return attrs.evolve(event, payment=self.encryption.seal_snapshot(event.payment))

    def _customer(self, customer_id: str | None) -> str | None:
        return None if customer_id is None else self.encryption.index(customer_id)

    # -- out: opened -----------------------------------------------------------------

    def _open(self, payment: Payment | None) -> Payment | None:
        return None if payment is None else self._opened(payment)

    def _opened(self, payment: Payment) -> Payment:
        customer_id, metadata = self.encryption.open(
            payment.id, payment.customer_id, payment.metadata
        )
        return attrs.evolve(payment, customer_id=customer_id, metadata=metadata)

    def _open_records(self, records: PaymentRecords) -> PaymentRecords:
        stored = records.payment
        payment = self._opened(stored)
        journal = [_owned(e, stored.customer_id, payment.customer_id) for e in records.journal]
        return attrs.evolve(records, payment=payment, journal=journal)

    def _open_message(self, message: OutboxMessage) -> OutboxMessage:
        event = message.event
        opened = attrs.evolve(event, payment=self.encryption.open_snapshot(event.payment))
        return attrs.evolve(message, event=opened)

    # -- PaymentStore ----------------------------------------------------------------

    async def add(self, change: Change) -> Payment | None:
        try:
            return self._open(await self.inner.add(self._seal(change)))
        except CreditLimitExceeded as exc:  # name the customer, not the blind index
            raise _named(exc, change) from None

    async def add_many(self, changes: Sequence[Change]) -> None:
        try:
            await self.inner.add_many([self._seal(c) for c in changes])
        except CreditLimitExceeded as exc:
            index = self.encryption.index
            named = [c for c in changes if index(c.payment.customer_id) == exc.customer_id]
            raise (_named(exc, named[0]) if named else exc) from None

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        return await self.inner.apply(self._seal(change), expected=expected)

    async def apply_many(self, changes: Sequence[Change], *, expected: PaymentStatus) -> set[UUID]:
        return await self.inner.apply_many([self._seal(c) for c in changes], expected=expected)

    async def transition(self, move: Transition) -> Stepped:
        # The inner store decides on the sealed row: the event's snapshot, the exposure
        # and the journal it writes from that row are sealed as ``_seal`` seals them.
        stepped = await self.inner.transition(move)
        return Stepped(
            self._open(stepped.written), self._open(stepped.found), stepped.plan,
            stepped.operation,
        )  # fmt: skip

    async def get(self, payment_id: UUID) -> Payment | None:
        return self._open(await self.inner.get(payment_id))

    async def get_with_plan(self, payment_id: UUID) -> tuple[Payment, Plan | None] | None:
        found = await self.inner.get_with_plan(payment_id)
        return None if found is None else (self._opened(found[0]), found[1])

    async def get_many(self, payment_ids: Sequence[UUID]) -> dict[UUID, Payment]:
        found = await self.inner.get_many(payment_ids)
        return {pid: p for pid, payment in found.items() if (p := self._open(payment))}

    async def list_payments(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        limit: int,
        after: Keyset | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[Payment]:
        found = await self.inner.list_payments(
            status=status,
            customer_id=self._customer(customer_id),
            limit=limit,
            after=after,
            created_from=created_from,
            created_to=created_to,
        )
        return [p for payment in found if (p := self._open(payment))]

    async def count(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        return await self.inner.count(
            status=status,
            customer_id=self._customer(customer_id),
            created_from=created_from,
            created_to=created_to,
        )

    async def summarize(
        self,
        *,
        customer_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
    ) -> list[SummaryRow]:
        return await self.inner.summarize(
            customer_id=self._customer(customer_id),
            created_from=created_from,
            created_to=created_to,
        )

    async def exposure(self, customer_id: str, currency: str) -> Decimal:
        return await self.inner.exposure(self.encryption.index(customer_id), currency)

    async def rebuild_exposure(self) -> int:
        return await self.inner.rebuild_exposure()

    async def journal(self, payment_id: UUID) -> list[JournalEntry]:
        entries = await self.inner.journal(payment_id)
        stored = await self.inner.get(payment_id) if entries else None
        if stored is None:
            return entries
        customer = self._opened(stored).customer_id
        return [_owned(e, stored.customer_id, customer) for e in entries]

    async def balance(self, account: Account) -> Decimal:
        if account.kind is AccountKind.RECEIVABLE:
            account = attrs.evolve(account, owner=self.encryption.index(account.owner))
        return await self.inner.balance(account)

    async def payment_records(self, *, after: UUID | None, limit: int) -> list[PaymentRecords]:
        found = await self.inner.payment_records(after=after, limit=limit)
        return [self._open_records(r) for r in found]

    async def find_request(self, scope: str, key: str) -> KeyedChange | None:
        held = await self.inner.find_request(scope, key)
        return None if held is None else KeyedChange(held.request, self._opened(held.payment))

    async def settle(
        self, previous: Operation, operation: Operation, change: Change | None = None
    ) -> bool:
        sealed = None if change is None else self._seal(change)
        return await self.inner.settle(previous, operation, sealed)

    async def claim_events(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[OutboxMessage]:
        claimed = await self.inner.claim_events(limit, now=now, lease_until=lease_until)
        return [self._open_message(m) for m in claimed]

    async def parked_events(self, limit: int = 100) -> list[OutboxMessage]:
        return [self._open_message(m) for m in await self.inner.parked_events(limit)]

    # -- nothing to seal: the inner store's own ---------------------------------------

    def __getattr__(self, name: str) -> Any:
        """What carries no customer id or metadata (the audit trail, operations, plans,
        the work queue, the outbox's bookkeeping, the trial balance, the exposure
        differences, which name customers by blind index) is the inner store's."""
        return getattr(self.inner, name)


def _owned(entry: JournalEntry, owner: str, instead: str) -> JournalEntry:
    """``entry`` with the receivable lines of ``owner`` posted to ``instead``: sealing
    (the customer id to its blind index) and opening (back)."""
    lines = tuple(
        attrs.evolve(line, account=attrs.evolve(line.account, owner=instead))
        if line.account.kind is AccountKind.RECEIVABLE and line.account.owner == owner
        else line
        for line in entry.lines
    )
    return attrs.evolve(entry, lines=lines)


def _named(exc: CreditLimitExceeded, change: Change) -> CreditLimitExceeded:
    return CreditLimitExceeded(change.payment.customer_id, exc.limit, exc.exposure, exc.requested)
