"""The in-memory store: the fake that service tests use, held to the same contract as SQL.

Its outbox (and the lock every call takes) is in ``paymentorch.adapters.memory.outbox``.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import attrs

from paymentorch import _deadline
from paymentorch.adapters.memory.ledger import MemoryLedger, Trail, entries, with_entry
from paymentorch.domain import (
    AuditEntry,
    Change,
    CreditLimitExceeded,
    FieldError,
    IdempotencyConflict,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentStatus,
    StoreError,
    ValidationError,
)
from paymentorch.domain.actions import IN_FLIGHT
from paymentorch.domain.collections import collectable
from paymentorch.domain.credit import exposure_changes, exposure_of
from paymentorch.domain.orchestration import IN_DOUBT_ERROR
from paymentorch.domain.plans import RUNNING, InstallmentStatus, Plan
from paymentorch.domain.records import check_bulk
from paymentorch.domain.requests import KeyedChange
from paymentorch.domain.results import SummaryRow
from paymentorch.domain.transitions import Stepped, Transition
from paymentorch.ports import Keyset


class InMemoryPaymentStore(MemoryLedger):
    """Payments, audit trail and outbox in this process's memory.

    Every operation is one step under a lock, so it is safe from many tasks and threads.
    Delivered events are dropped, so memory stays flat while the relay keeps up.
    """

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._payments: dict[UUID, Payment] = {}
        self._by_key: dict[tuple[str, str], UUID] = {}  # (creator's id, key)
        self._order: list[Keyset] = []
        self._by_customer: dict[str, list[Keyset]] = {}
        self._status_counts = dict.fromkeys(PaymentStatus, 0)
        # Each payment's audit trail, each entry followed by its event's id: one flat
        # tuple, as small as a trail can be held (a million payments' trails are most of
        # the store), and one object for the garbage collector to walk, not one an entry.
        self._audit: dict[UUID, Trail] = {}
        self._operations: dict[UUID, list[UUID]] = {}  # payment id -> its operations' ids
        self._ops: dict[UUID, Operation] = {}
        self._op_leases: dict[UUID, datetime] = {}
        self._operation_keys: dict[tuple[UUID, str, str], UUID] = {}
        self._inbox: set[tuple[str, str]] = set()
        self._exposure: dict[tuple[str, str], Decimal] = {}  # (customer, currency)
        self._plans: dict[UUID, Plan] = {}
        self._requests: dict[tuple[str, str], KeyedChange] = {}  # (actor's id, key)

    # -- writes -----------------------------------------------------------------

    async def add(self, change: Change) -> Payment | None:
        """Insert a payment with its entry and event, or return the holder of its key."""
        payment = change.payment
        with self._lock:
            self._open()
            key = _scoped_key(change)
            if key is not None and key in self._by_key:
                return self._payments[self._by_key[key]]
            if payment.id in self._payments:
                raise StoreError("a payment with this id exists already")
            self._check_event(change.event.id)
            self._check_credit((change,))
            self._insert(change)
        return None

    async def add_many(self, changes: Sequence[Change]) -> None:
        """Insert all payments or none."""
        with self._lock:
            self._open()
            keys = [k for c in changes if (k := _scoped_key(c)) is not None]
            for key in keys:
                if key in self._by_key:
                    raise IdempotencyConflict(key[1], "already used by another payment")
            if len(set(keys)) != len(keys):
                raise IdempotencyConflict(
                    next(k for k in keys if keys.count(k) > 1)[1], "used twice in one batch"
                )
            self._check_new(changes)
            self._check_credit(changes)
            for change in changes:
                self._insert(change)

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        """Write the change if the payment still has status ``expected`` and the version
        the change follows, and, for a refund, room for it under what was captured."""
        with self._lock:
            self._open()
            return self._write_change(change, expected)

    def _write_change(self, change: Change, expected: PaymentStatus) -> bool:
        old = self._payments.get(change.payment.id)
        if old is None or not _guards_hold(old, change, expected):
            return False
        self._check_event(change.event.id)
        self._check_operation(change)
        request = change.request
        if request is not None:
            held = (change.audit.actor_id, request.key)
            if held in self._requests:
                raise IdempotencyConflict(request.key, "already used")
            self._requests[held] = KeyedChange(request, change.payment)
        self._replace(old, change)
        return True

    async def transition(self, move: Transition) -> Stepped:
        """Decide ``move`` on the payment as it is and write its change, in one step; or
        say what it found."""
        with self._lock:
            self._open()
            old = self._payments.get(move.payment_id)
            if old is None:
                return Stepped()
            if not move.applies_to(old):
                return Stepped(found=old, plan=self._plans.get(old.id))
            # Decided on the payment as stored, under the lock: its guard holds.
            change = move.change(old)
            self._write_change(change, old.status)  # IdempotencyConflict: the key is held
            return Stepped(written=change.payment, operation=change.operation)

    async def apply_many(self, changes: Sequence[Change], *, expected: PaymentStatus) -> set[UUID]:
        """Apply every change whose payment still has status ``expected``."""
        check_bulk(changes)
        with self._lock:
            self._open()
            return self._apply_locked(changes, expected)

    def _apply_locked(self, changes: Sequence[Change], expected: PaymentStatus) -> set[UUID]:
        payments = self._payments
        due = [
            c
            for c in changes
            if (old := payments.get(c.payment.id)) is not None and _guards_hold(old, c, expected)
        ]
        self._check_events(due)
        for change in due:
            self._replace(payments[change.payment.id], change)
        return {c.payment.id for c in due}

    def _replace(self, old: Payment, change: Change) -> None:
        new = change.payment
        self._payments[new.id] = new
        self._status_counts[old.status] -= 1
        self._status_counts[new.status] += 1
        self._record(change)

    def _check_new(self, changes: Sequence[Change]) -> None:
        ids = {c.payment.id for c in changes}
        if len(ids) != len(changes) or any(i in self._payments for i in ids):
            raise StoreError("a payment with this id exists already")
        self._check_events(changes)

    def _check_events(self, changes: Sequence[Change]) -> None:
        ids = {c.event.id for c in changes}
        if len(ids) != len(changes):
            raise StoreError("an outbox event with this id exists already")
        for event_id in ids:
            self._check_event(event_id)

    def _check_event(self, event_id: UUID) -> None:
        # Like the SQL outbox's unique key: delivered events are gone, waiting ones count.
        if event_id in self._pending or event_id in self._parked:
            raise StoreError("an outbox event with this id exists already")

    def _insert(self, change: Change) -> None:
        payment = change.payment
        self._payments[payment.id] = payment
        key = _scoped_key(change)
        if key is not None:
            self._by_key[key] = payment.id
        position = (payment.created_at, payment.id)
        _keep_in_order(self._order, position)
        _keep_in_order(self._by_customer.setdefault(payment.customer_id, []), position)
        self._status_counts[payment.status] += 1
        self._record(change)

    def _check_operation(self, change: Change) -> None:
        op = change.operation
        key = None if op is None else op.idempotency_key
        if op is not None and (op.payment_id, change.audit.actor_id, key) in self._operation_keys:
            raise IdempotencyConflict(key or "", "already used")

    def _check_credit(self, changes: Sequence[Change]) -> None:
        # Every growing exposure fits under its limit, counted together: or nothing is written.
        after: dict[tuple[str, str], Decimal] = {}
        for change in changes:
            if not change.exposure:
                continue
            key = (change.payment.customer_id, change.payment.currency)
            before = after.get(key, self._exposure.get(key, _ZERO))
            after[key] = before + change.exposure
            limit = change.growth_limit
            if limit is not None and after[key] > limit:
                raise CreditLimitExceeded(key[0], limit, before, change.exposure)

    def _record(self, change: Change) -> None:
        if change.plan is not None:
            self._plans[change.payment.id] = change.plan
        if change.exposure:
            owner = (change.payment.customer_id, change.payment.currency)
            self._exposure[owner] = max(_ZERO, self._exposure.get(owner, _ZERO) + change.exposure)
        pid = change.payment.id
        self._audit[pid] = with_entry(self._audit.get(pid, ()), change)
        self._post(change)
        for event in (change.event, *change.more_events):
            self._enqueue(event)
        op = change.operation
        if op is not None:
            self._operations.setdefault(op.payment_id, []).append(op.id)
            self._ops[op.id] = op
            if op.idempotency_key is not None:
                key = (op.payment_id, change.audit.actor_id, op.idempotency_key)
                self._operation_keys[key] = op.id

    async def purge_idempotency_keys(self, created_before: datetime) -> int:
        """Release keys of payments created before ``created_before``."""
        with self._lock:
            self._open()
            released = [
                (key, pid)
                for key, pid in self._by_key.items()
                if self._payments[pid].created_at < created_before
            ]
            for key, pid in released:
                del self._by_key[key]
                self._payments[pid] = attrs.evolve(self._payments[pid], idempotency_key=None)
            forgotten = [
                held
                for held, done in self._requests.items()
                if done.payment.updated_at < created_before
            ]
            for held in forgotten:
                del self._requests[held]
            return len(released) + len(forgotten)

    # -- reads ------------------------------------------------------------------

    async def get(self, payment_id: UUID) -> Payment | None:
        """The payment, or None."""
        self._open()
        return self._payments.get(payment_id)

    async def get_many(self, payment_ids: Sequence[UUID]) -> dict[UUID, Payment]:
        """The payments that exist among ``payment_ids``."""
        self._open()
        found = self._payments
        return {i: found[i] for i in payment_ids if i in found}

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
        """Newest first, strictly after ``after``, within the creation period."""
        with self._lock:
            self._open()
            order, start, end = self._window(customer_id, created_from, created_to)
            if after is not None:
                end = min(end, bisect.bisect_left(order, after))
            items: list[Payment] = []
            for index in range(end - 1, start - 1, -1):
                payment = self._payments[order[index][1]]
                if status is None or payment.status is status:
                    items.append(payment)
                    if len(items) == limit:
                        break
            return items

    async def count(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        """How many payments match."""
        with self._lock:
            self._open()
            if customer_id is None and created_from is None and created_to is None:
                return len(self._payments) if status is None else self._status_counts[status]
            return sum(
                1
                for p in self._matching(customer_id, created_from, created_to)
                if status is None or p.status is status
            )

    async def summarize(
        self,
        *,
        customer_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
    ) -> list[SummaryRow]:
        """Matching payments grouped by day created (UTC), status and currency."""
        groups: dict[tuple[date, PaymentStatus, str], list[Decimal]] = {}
        with self._lock:
            self._open()
            for p in self._matching(customer_id, created_from, created_to):
                key = (p.created_at.astimezone(UTC).date(), p.status, p.currency)
                groups.setdefault(key, []).append(p.amount)
        return [
            SummaryRow(day, status, currency, len(amounts), sum(amounts, Decimal(0)))
            for (day, status, currency), amounts in groups.items()
        ]

    def _window(
        self, customer_id: str | None, created_from: datetime | None, created_to: datetime | None
    ) -> tuple[list[Keyset], int, int]:
        """The positions in creation order (all, or the customer's) within the period."""
        order = self._order if customer_id is None else self._by_customer.get(customer_id, [])
        start = 0 if created_from is None else bisect.bisect_left(order, (created_from,))
        end = len(order) if created_to is None else bisect.bisect_left(order, (created_to,))
        return order, start, end

    def _matching(
        self, customer_id: str | None, created_from: datetime | None, created_to: datetime | None
    ) -> Iterator[Payment]:
        order, start, end = self._window(customer_id, created_from, created_to)
        for _, pid in order[start:end]:
            yield self._payments[pid]

    async def operations(self, payment_id: UUID) -> list[Operation]:
        """A payment's operations, oldest first."""
        with self._lock:
            self._open()
            return [self._ops[i] for i in self._operations.get(payment_id, ())]

    async def find_operation(self, payment_id: UUID, *, scope: str, key: str) -> Operation | None:
        """The operation of ``payment_id`` that ``scope`` asked for with ``key``."""
        with self._lock:
            self._open()
            found = self._operation_keys.get((payment_id, scope, key))
            return None if found is None else self._ops[found]

    async def find_request(self, scope: str, key: str) -> KeyedChange | None:
        """The transition the actor ``scope`` made with ``key``, or None."""
        with self._lock:
            self._open()
            return self._requests.get((scope, key))

    async def get_operation(self, operation_id: UUID) -> Operation | None:
        """The operation, or None."""
        with self._lock:
            self._open()
            return self._ops.get(operation_id)

    async def claim_operations(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[Operation]:
        """Lease due pending or unknown operations, soonest first."""
        with self._lock:
            self._open()
            due = sorted(
                (
                    op
                    for op in self._ops.values()
                    if op.status in _WORKABLE
                    and op.due_at is not None
                    and op.due_at <= now
                    and self._op_leases.get(op.id, now) <= now
                ),
                key=lambda op: (op.due_at, op.id),
            )[:limit]
            claimed = []
            for op in due:
                taken = op
                if op.status is OperationStatus.PENDING and op.id in self._op_leases:
                    taken = attrs.evolve(op, status=OperationStatus.UNKNOWN, error=IN_DOUBT_ERROR)
                    self._ops[op.id] = taken
                self._op_leases[op.id] = lease_until
                claimed.append(taken)
            return claimed

    async def settle(
        self, previous: Operation, operation: Operation, change: Change | None = None
    ) -> bool:
        """The operation's new state and its payment's change, both or neither."""
        with self._lock:
            self._open()
            stored = self._ops.get(operation.id)
            if stored is None or (stored.status, stored.attempts, stored.lookups) != (
                previous.status,
                previous.attempts,
                previous.lookups,
            ):
                return False
            if change is not None:
                expected = change.audit.from_status
                if expected is None or not self._write_change(change, expected):
                    return False
            self._ops[operation.id] = operation
            self._op_leases.pop(operation.id, None)
            return True

    async def operations_with_status(
        self, status: OperationStatus, *, limit: int
    ) -> list[Operation]:
        """Operations with ``status``, oldest first."""
        with self._lock:
            self._open()
            found = [op for op in self._ops.values() if op.status is status]
            return sorted(found, key=lambda op: (op.created_at, op.id))[:limit]

    async def get_with_plan(self, payment_id: UUID) -> tuple[Payment, Plan | None] | None:
        """The payment and its plan, as of one moment (under the lock), or None."""
        with self._lock:
            self._open()
            payment = self._payments.get(payment_id)
            return None if payment is None else (payment, self._plans.get(payment_id))

    async def plan(self, payment_id: UUID) -> Plan | None:
        """The payment's installment plan, or None."""
        with self._lock:
            self._open()
            return self._plans.get(payment_id)

    async def plans_due(self, late_before: datetime, repeat_before: datetime) -> list[UUID]:
        """Payments whose plan has an installment late, or perhaps owing a repeat fee."""
        with self._lock:
            self._open()
            return sorted(
                pid
                for pid, plan in self._plans.items()
                if plan.status in RUNNING
                and any(
                    (i.status is InstallmentStatus.SCHEDULED and i.due_at <= late_before)
                    or (i.status is InstallmentStatus.OVERDUE and i.due_at <= repeat_before)
                    for i in plan.installments
                )
            )

    async def plans_by_age(
        self, *, after: Keyset | None, limit: int
    ) -> list[tuple[UUID, datetime]]:
        """Running plans by oldest unpaid due date, then payment id, past ``after``."""
        with self._lock:
            self._open()
            ages = (
                (min(i.due_at for i in plan.installments if i.unpaid), pid)
                for pid, plan in self._plans.items()
                if plan.status in RUNNING and any(i.unpaid for i in plan.installments)
            )
            # A page is the first ``limit`` ages past ``after``: no need to sort them all.
            page = heapq.nsmallest(limit, (age for age in ages if after is None or age > after))
        return [(pid, oldest) for oldest, pid in page]

    async def installments_due(self, now: datetime, limit: int) -> list[tuple[UUID, int]]:
        """Unpaid installments to collect now: never tried, or a retry due (on plans with
        no collection, nor refund, under way)."""
        with self._lock:
            self._open()
            collecting = {
                op.payment_id
                for op in self._ops.values()
                if op.kind in _PLAN_MONEY and op.status in IN_FLIGHT and self._owed(op)
            }
            due = sorted(
                (i.due_at, pid, i.number)
                for pid, plan in self._plans.items()
                if plan.status in RUNNING and not plan.collection_stopped
                and pid not in collecting
                for i in plan.installments
                if collectable(i, now)
            )  # fmt: skip
            return [(pid, number) for _, pid, number in due[:limit]]

    def _owed(self, operation: Operation) -> bool:
        """Whether ``operation`` is a refund, or collects an installment still owed."""
        if operation.kind is not OperationKind.INSTALLMENT:
            return True
        plan = self._plans.get(operation.payment_id)
        found = None if plan is None else plan.installment(operation.installment or 0)
        return found is not None and found.unpaid

    async def plans_to_remind(
        self, now: datetime, until: datetime, smallest: timedelta
    ) -> list[UUID]:
        """Plans with an installment a reminder may be due for."""
        with self._lock:
            self._open()
            return sorted(
                pid
                for pid, plan in self._plans.items()
                if plan.status in RUNNING and not plan.collection_stopped
                and any(
                    i.status is InstallmentStatus.SCHEDULED and i.number > 1
                    and now < i.due_at <= until
                    and (i.reminded is None or i.reminded > smallest)
                    for i in plan.installments
                )
            )  # fmt: skip

    async def exposure(self, customer_id: str, currency: str) -> Decimal:
        """The customer's exposure in ``currency``."""
        with self._lock:
            self._open()
            return self._exposure.get((customer_id, currency), _ZERO)

    async def rebuild_exposure(self) -> int:
        """Recount every customer's exposure from payments and plans; return how many
        (customer, currency) figures were wrong."""
        with self._lock:
            self._open()
            wanted: dict[tuple[str, str], Decimal] = {}
            for payment in self._payments.values():
                owed = exposure_of(payment, self._plans.get(payment.id))
                if owed:
                    key = (payment.customer_id, payment.currency)
                    wanted[key] = wanted.get(key, _ZERO) + owed
            changes = exposure_changes(self._exposure, wanted)
            self._exposure.update(changes)
            return len(changes)

    async def find_operation_by_reference(self, processor: str, reference: str) -> Operation | None:
        """The operation a processor knows by ``reference``, or None."""
        with self._lock:
            self._open()
            return next(
                (
                    op
                    for op in self._ops.values()
                    if op.processor == processor and op.reference == reference
                ),
                None,
            )

    async def record_callback(
        self,
        processor: str,
        event_id: str,
        *,
        operation_id: UUID | None,
        outcome: str,
        received_at: datetime,
    ) -> bool:
        """Keep the event id in the inbox; False when it was there already."""
        with self._lock:
            self._open()
            if (processor, event_id) in self._inbox:
                return False
            self._inbox.add((processor, event_id))
            return True

    async def audit_trail(self, payment_id: UUID) -> list[AuditEntry]:
        """Entries for one payment, oldest first."""
        with self._lock:
            self._open()
            return entries(payment_id, self._audit.get(payment_id, ()))

    # -- lifecycle --------------------------------------------------------------

    async def ping(self) -> None:
        """Answers while the store is open."""
        self._open()

    async def aclose(self) -> None:
        """Close the store: every later call raises ``StoreUnavailable``, as on SQL."""
        self._closed = True


_ZERO = Decimal(0)
_WORKABLE = frozenset({OperationStatus.PENDING, OperationStatus.UNKNOWN})
_PLAN_MONEY = frozenset({OperationKind.INSTALLMENT, OperationKind.REFUND})
"""A plan's money under way: no collection of the plan is sent meanwhile."""


def _guards_hold(old: Payment, change: Change, expected: PaymentStatus) -> bool:
    """The change's guard against the stored payment: status, version, room for a refund."""
    guard = change.guard
    if old.status is not expected or guard.status is not expected:
        return False
    if old.version != guard.version:
        return False
    room = old.captured_amount - old.refunded_amount - old.pending_refunds
    return guard.refund_room <= room


def _keep_in_order(order: list[Keyset], position: Keyset) -> None:
    # Payments come mostly in creation order: the newest goes last without a search.
    if not order or order[-1] < position:
        order.append(position)
    else:
        bisect.insort(order, position)


def _scoped_key(change: Change) -> tuple[str, str] | None:
    key = change.payment.idempotency_key
    return None if key is None else (change.audit.actor_id, key)


async def open_store(url: str, **options: object) -> InMemoryPaymentStore:
    """A new, empty store for ``memory://``. ``create_schema`` and ``deadline`` are
    accepted and ignored (nothing waits in memory)."""
    unknown = set(options) - {"create_schema", "deadline"}
    if unknown:
        raise TypeError(f"memory:// takes no option(s) {', '.join(sorted(unknown))}")
    if options.get("deadline") is not None and _deadline.seconds(options["deadline"]) is None:
        message = "must be seconds (a number or a timedelta) above 0"
        raise ValidationError([FieldError("deadline", message, "range")])
    return InMemoryPaymentStore()
