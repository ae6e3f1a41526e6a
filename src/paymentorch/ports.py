"""The interfaces the service depends on. Adapters implement them; the domain knows none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable
from uuid import UUID

from paymentorch.domain import (
    AuditEntry,
    Change,
    Operation,
    OperationStatus,
    Payment,
    PaymentEvent,
    PaymentStatus,
)
from paymentorch.domain.cursor import Keyset
from paymentorch.domain.integrity import PaymentRecords
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry
from paymentorch.domain.outbox import OutboxMessage, OutboxStats
from paymentorch.domain.plans import Plan
from paymentorch.domain.processing import ProcessorCapabilities, ProcessorRequest, ProcessorResult
from paymentorch.domain.requests import KeyedChange
from paymentorch.domain.results import SummaryRow
from paymentorch.domain.transitions import Stepped, Transition

__all__ = [
    "AuditLog",
    "Cache",
    "ChangeWriter",
    "EventSink",
    "Keyset",
    "Ledger",
    "Maintenance",
    "Outbox",
    "OutboxMessage",
    "OutboxStats",
    "PaymentProcessor",
    "PaymentReader",
    "PaymentStore",
    "Queries",
    "WorkQueue",
]

EventSink = Callable[[Sequence[PaymentEvent]], Awaitable[None]]
"""Where relayed events go: raise to leave them pending for another attempt."""


@runtime_checkable
class AuditLog(Protocol):
    """Reads the audit trail."""

    async def audit_trail(self, payment_id: UUID) -> list[AuditEntry]:
        """Entries for one payment, oldest first."""
        ...


@runtime_checkable
class Outbox(Protocol):
    """The events committed with each change, waiting for delivery."""

    async def claim_events(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[OutboxMessage]:
        """Lease up to ``limit`` due events, oldest first.

        An event is due when it is pending, its retry time has come, no unexpired lease
        holds it, and no earlier event of the same payment is still pending, so that
        several relays keep each payment's events in order.
        """
        ...

    async def mark_delivered(self, event_ids: Sequence[UUID]) -> None:
        """Record delivery; the events will not be claimed again."""
        ...

    async def mark_failed(
        self, event_ids: Sequence[UUID], *, error: str, retry_at: datetime | None
    ) -> None:
        """Count a failed attempt; retry at ``retry_at``, or park the events when None."""
        ...

    async def outbox_stats(self) -> OutboxStats:
        """Pending and parked counts, and the age of the oldest pending event."""
        ...

    async def parked_events(self, limit: int = 100) -> list[OutboxMessage]:
        """Parked events, oldest first."""
        ...

    async def requeue_parked(self, event_ids: Sequence[UUID] | None = None) -> int:
        """Make parked events (all, or those named) pending again with a fresh attempt count."""
        ...


@runtime_checkable
class ChangeWriter(Protocol):
    """Writes changes: each with its audit entry, its event, and what it carries
    (an operation, a plan, an exposure move, a journal entry, a transition's key),
    atomically and under its guard."""

    async def add(self, change: Change) -> Payment | None:
        """Insert a new payment with its entry and event; return None.

        If its idempotency key is already held, insert nothing and return the
        payment holding it. The claim is atomic: concurrent adds with one key
        insert exactly one payment. A change whose ``exposure`` would take the
        customer's past ``credit_limit`` raises ``CreditLimitExceeded`` and writes
        nothing; the check and the reservation are one atomic write.
        """
        ...

    async def add_many(self, changes: Sequence[Change]) -> None:
        """Insert all or nothing; ``IdempotencyConflict`` if any key is already held."""
        ...

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        """Write the change with its entry, event and operation, and say if it did.

        Written only if, at the moment of writing, the payment has status ``expected``
        and the version before ``change.payment.version``, and, for a refund, if its
        refunded amount plus its pending refunds plus the refund's amount stay within
        what was captured: all checked by the write itself, never read first. A refund
        key its actor already used for this payment raises ``IdempotencyConflict`` and
        writes nothing. So does ``change.request``, a transition's key, when its actor
        holds it already: otherwise it is claimed with the change, atomically (a unique
        key in the same transaction), keeping ``change.payment`` for ``find_request``.
        """
        ...

    async def apply_many(self, changes: Sequence[Change], *, expected: PaymentStatus) -> set[UUID]:
        """``apply`` for many payments at once; return the ids that changed. Only for
        transitions without an operation, a transition's key or a refund (a bulk
        confirmation): others raise ``ValueError`` and nothing is written."""
        ...

    async def transition(self, move: Transition) -> Stepped:
        """Decide and write ``move`` in one step, reading nothing first: if the payment
        exists and ``move.applies_to`` it as the store finds it, write ``move.change`` of
        it (its entry, event, exposure move and journal entry, atomically) and return the
        payment after it (``Stepped.written``) with the refund it completed, if any
        (``Stepped.operation``: a refund of what is left says so what it gave back);
        else write nothing and say, if it can without more work, what it found: the
        payment as it was (``found``) and, when it has one, its plan (``plan``), both as
        ``get`` and ``plan`` would have read them then. The service decides on what it
        found and reads what it did not say: a store that cannot decide by itself may
        always return ``Stepped()``."""
        ...


@runtime_checkable
class PaymentReader(Protocol):
    """Reads one payment and what hangs from it."""

    async def get(self, payment_id: UUID) -> Payment | None:
        """The payment, or None."""
        ...

    async def get_many(self, payment_ids: Sequence[UUID]) -> dict[UUID, Payment]:
        """The payments that exist among ``payment_ids``."""
        ...

    async def operations(self, payment_id: UUID) -> list[Operation]:
        """The payment's operations, oldest first."""
        ...

    async def find_operation(self, payment_id: UUID, *, scope: str, key: str) -> Operation | None:
        """The operation of ``payment_id`` that the actor ``scope`` asked for with ``key``."""
        ...

    async def get_operation(self, operation_id: UUID) -> Operation | None:
        """The operation, or None."""
        ...

    async def find_request(self, scope: str, key: str) -> KeyedChange | None:
        """The transition the actor ``scope`` made with ``key``, or None."""
        ...

    async def plan(self, payment_id: UUID) -> Plan | None:
        """The payment's installment plan, or None."""
        ...

    async def get_with_plan(self, payment_id: UUID) -> tuple[Payment, Plan | None] | None:
        """The payment and its plan (None without one), both as of one moment: never
        a plan older or newer than the payment read with it. None: no such payment."""
        ...

    async def exposure(self, customer_id: str, currency: str) -> Decimal:
        """The customer's exposure in ``currency``: the sum of the ``Change.exposure``
        of every change written, never below 0 (0 for a customer never seen)."""
        ...


@runtime_checkable
class Queries(Protocol):
    """Lists, counts and sums payments."""

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
        """Newest first by ``(created_at, id)``, strictly after the ``after`` position.

        ``created_from`` (inclusive) and ``created_to`` (exclusive) bound the creation time.
        """
        ...

    async def count(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        """How many payments match."""
        ...

    async def summarize(
        self,
        *,
        customer_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
    ) -> list[SummaryRow]:
        """Matching payments grouped by the day (UTC) they were created, status and currency."""
        ...

    async def plans_by_age(
        self, *, after: Keyset | None, limit: int
    ) -> list[tuple[UUID, datetime]]:
        """(payment id, oldest unpaid due date) of running plans, oldest due date first,
        ties by payment id, strictly after the ``after`` position; at most ``limit``."""
        ...


@runtime_checkable
class WorkQueue(Protocol):
    """The operations the worker carries out, the plans' due work, and callbacks."""

    async def claim_operations(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[Operation]:
        """Lease up to ``limit`` pending or unknown operations due by ``now``, soonest first.

        A leased operation is not handed out again before ``lease_until``, so several
        workers, in one process or many, share the work.
        """
        ...

    async def settle(
        self, previous: Operation, operation: Operation, change: Change | None = None
    ) -> bool:
        """Write ``operation``'s new state, and ``change`` to its payment, atomically.

        Only if the stored operation still has ``previous``'s status, attempts and
        lookups (nobody settled it meanwhile) and ``change`` passes ``apply``'s guards
        against ``change.audit.from_status``; else nothing is written. The lease ends.
        """
        ...

    async def operations_with_status(
        self, status: OperationStatus, *, limit: int
    ) -> list[Operation]:
        """Operations with ``status``, oldest first."""
        ...

    async def find_operation_by_reference(self, processor: str, reference: str) -> Operation | None:
        """The operation a processor knows by ``reference``, or None."""
        ...

    async def record_callback(
        self,
        processor: str,
        event_id: str,
        *,
        operation_id: UUID | None,
        outcome: str,
        received_at: datetime,
    ) -> bool:
        """Keep ``(processor, event_id)`` in the inbox; False when it was there already.

        The claim is atomic: of any number of concurrent deliveries, one returns True.
        """
        ...

    async def plans_due(self, late_before: datetime, repeat_before: datetime) -> list[UUID]:
        """Payments whose plan has an installment still ``scheduled`` and due before
        ``late_before``, or ``overdue`` and due before ``repeat_before`` (a repeat fee
        may be due): the ones overdue processing looks at, in payment id order."""
        ...

    async def installments_due(self, now: datetime, limit: int) -> list[tuple[UUID, int]]:
        """(payment id, installment number) of unpaid installments due by ``now`` on running
        plans whose collection did not stop and with no collection or refund under way
        (an installment, or a refund, operation pending, unknown or needing attention):
        never tried, or with a retry due by ``now``; soonest due first, then by payment id
        and number."""
        ...

    async def plans_to_remind(
        self, now: datetime, until: datetime, smallest: timedelta
    ) -> list[UUID]:
        """Payments whose running plan (collection not stopped) has a scheduled installment
        after the first due after ``now`` and by ``until``, not yet reminded ``smallest``
        before its due date: the ones reminders look at, in payment id order."""
        ...


@runtime_checkable
class Ledger(Protocol):
    """The books: journals, balances, and the records the integrity check compares."""

    async def journal(self, payment_id: UUID) -> list[JournalEntry]:
        """The payment's journal entries, oldest first."""
        ...

    async def balance(self, account: Account) -> Decimal:
        """Debits less credits of ``account``: a sum over its postings (no balance row is
        kept, so posting to a house account serialises nothing)."""
        ...

    async def trial_balance(self) -> dict[tuple[AccountKind, str], Decimal]:
        """Totals of the postings by account kind and currency."""
        ...

    async def payment_records(self, *, after: UUID | None, limit: int) -> list[PaymentRecords]:
        """Up to ``limit`` payments after ``after`` in id order, each with its audit trail,
        the events it still holds or delivered, its journal and its plan: what the
        integrity check compares."""
        ...

    async def exposure_differences(self) -> list[tuple[str, str, Decimal, Decimal]]:
        """Each customer whose stored exposure is not what its payments and plans owe:
        ``(customer_id, currency, stored, owed)``."""
        ...


@runtime_checkable
class Maintenance(Protocol):
    """Repairs, housekeeping and the store's life."""

    async def rebuild_exposure(self) -> int:
        """Recount every customer's exposure from payments and plans (Pending and
        Authorized payments, unpaid installments of confirmed ones), atomically; return
        how many (customer, currency) figures were wrong."""
        ...

    async def purge_idempotency_keys(self, created_before: datetime) -> int:
        """Release the keys of payments created before ``created_before``, and forget
        transitions' keys claimed before it; return how many."""
        ...

    async def ping(self) -> None:
        """One round trip; raise ``StoreUnavailable`` if the backend cannot answer."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


@runtime_checkable
class PaymentStore(
    ChangeWriter,
    PaymentReader,
    Queries,
    WorkQueue,
    Outbox,
    Ledger,
    AuditLog,
    Maintenance,
    Protocol,
):
    """Payments, with each change's audit entry and outbox event written atomically: the
    union of the roles above, what a third-party store implements.

    ``backend`` names the kind of store (``memory``, ``sqlite``, ``postgresql``).
    """

    backend: str


@runtime_checkable
class PaymentProcessor(Protocol):
    """An external gateway (card network, bank, BNPL funder) that moves money.

    ``execute`` must honour ``request.operation_id`` as an idempotency key. An adapter
    returns ``NOT_ATTEMPTED`` only when it knows the request did not leave; any
    exception escaping ``execute`` counts as ``UNKNOWN``, never as a decline.
    """

    name: str
    capabilities: ProcessorCapabilities

    async def execute(self, request: ProcessorRequest) -> ProcessorResult:
        """Carry out the request."""
        ...

    async def lookup(self, request: ProcessorRequest) -> ProcessorResult:
        """What became of ``request.operation_id`` (``NOT_FOUND`` when nothing)."""
        ...


@runtime_checkable
class Cache(Protocol):
    """Payments by id, kept coherent by the service. A cache that raises is bypassed."""

    async def get(self, payment_id: UUID) -> Payment | None:
        """The cached payment, or None."""
        ...

    async def set(self, payment: Payment) -> None:
        """Keep ``payment`` unless a newer version of it is cached already."""
        ...

    async def delete(self, payment_id: UUID) -> None:
        """Forget the payment."""
        ...
