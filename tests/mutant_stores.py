"""Broken stores and processors: each breaks one promise, and the shipped suites must notice."""

from __future__ import annotations

import asyncio
from datetime import datetime

import attrs

from paymentorch.adapters.memory import InMemoryPaymentStore
from paymentorch.adapters.memory.ledger import with_entry
from paymentorch.adapters.memory.outbox import OutboxRow
from paymentorch.domain import (
    Change,
    IdempotencyConflict,
    Operation,
    OperationStatus,
    Payment,
    PaymentStatus,
    StoreError,
)
from paymentorch.domain.processing import ProcessorRequest, ProcessorResult
from paymentorch.domain.requests import KeyedChange, RequestKey, request_key
from paymentorch.domain.transitions import Stepped, Transition
from paymentorch.ports import OutboxMessage
from paymentorch.testing import SimulatedProcessor


class IgnoresExpected(InMemoryPaymentStore):
    """``apply`` writes whatever status the payment has now: read, then write."""

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        current = await self.get(change.payment.id)
        if current is None:
            return False
        return await super().apply(change, expected=current.status)


class ForgetsEvents(InMemoryPaymentStore):
    """Writes the payment and its audit entry, but never the outbox event."""

    def _record(self, change: Change) -> None:
        pid = change.payment.id
        self._audit[pid] = with_entry(self._audit.get(pid, ()), change)


class IgnoresKeys(InMemoryPaymentStore):
    """Inserts every payment, even when its caller already holds the key."""

    async def add(self, change: Change) -> Payment | None:
        payment = attrs.evolve(change.payment, idempotency_key=None)
        await super().add(attrs.evolve(change, payment=payment))
        return None


class ReordersEvents(InMemoryPaymentStore):
    """Hands out due events newest first, ignoring each payment's order."""

    async def claim_events(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[OutboxMessage]:
        claimed: list[OutboxMessage] = []
        with self._lock:
            for row in reversed(self._pending.values()):
                if (row.retry_at is not None and row.retry_at > now) or (
                    row.lease_until is not None and row.lease_until > now
                ):
                    continue
                row.lease_until = lease_until
                claimed.append(row.message)
                if len(claimed) == limit:
                    break
        return claimed


class NotAtomic(InMemoryPaymentStore):
    """Writes the payment and its entry first, then fails on a bad event, leaving both."""

    def _check_event(self, event_id: object) -> None:
        pass  # no check before writing

    def _record(self, change: Change) -> None:
        pid = change.payment.id
        self._audit[pid] = with_entry(self._audit.get(pid, ()), change)
        event = change.event
        if event.id in self._pending or event.id in self._parked:
            raise StoreError("an outbox event with this id exists already")
        self._pending[event.id] = OutboxRow(next(self._seq), event)


class ServesWhenClosed(InMemoryPaymentStore):
    """Keeps answering after ``aclose``."""

    def _open(self) -> None:
        pass


class RefundsReadThenWrite(InMemoryPaymentStore):
    """Checks a refund's room against what it read, then writes later, unguarded."""

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        current = await self.get(change.payment.id)
        op = change.operation
        if current is None or current.status is not expected:
            return False
        if op is not None and current.refunded_amount + op.amount > current.captured_amount:
            return False
        await asyncio.sleep(0)  # the gap between the read and the write
        with self._lock:
            self._check_event(change.event.id)
            self._replace(self._payments[current.id], change)
        return True

    async def transition(self, move: Transition) -> Stepped:
        if move.action != "refund":
            return await super().transition(move)
        return await TransitionsReadThenWrite.transition(self, move)


class TransitionsReadThenWrite(InMemoryPaymentStore):
    """Decides a transition on what it read, then writes it later, unguarded."""

    async def transition(self, move: Transition) -> Stepped:
        current = await self.get(move.payment_id)
        if current is None or not move.applies_to(current):
            return Stepped(found=current)
        await asyncio.sleep(0)  # the gap between the read and the write
        change = move.change(current)
        with self._lock:
            self._check_event(change.event.id)
            self._replace(self._payments[current.id], change)
        return Stepped(written=change.payment)


class ClaimsKeysApart(InMemoryPaymentStore):
    """Writes a keyed transition, then claims its key in a step of its own (in its one
    step too)."""

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        request = change.request
        if not await super().apply(attrs.evolve(change, request=None), expected=expected):
            return False
        await self._claim(change.audit.actor_id, request, change.payment)
        return True

    async def transition(self, move: Transition) -> Stepped:
        stepped = await super().transition(attrs.evolve(move, key=None))
        if stepped.written is not None and move.key is not None:
            taken = stepped.written.captured_amount if move.action == "capture" else None
            request = request_key(move.key, move.action, amount=taken, reason=move.reason)
            await self._claim(move.actor_id, request, stepped.written)
        return stepped

    async def _claim(self, scope: str, request: RequestKey | None, payment: Payment) -> None:
        await asyncio.sleep(0)  # the gap between the change and the claim
        if request is not None:
            with self._lock:
                if (scope, request.key) in self._requests:
                    raise IdempotencyConflict(request.key, "already used")
                self._requests[scope, request.key] = KeyedChange(request, payment)


class TrustsAbandonedLeases(InMemoryPaymentStore):
    """Hands out a pending operation whose lease ran out as still pending: it may have
    been sent, and a router would send it again elsewhere."""

    async def claim_operations(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[Operation]:
        with self._lock:
            for op in self._ops.values():
                if op.status is OperationStatus.PENDING:
                    self._op_leases.pop(op.id, None)  # forget that anyone took it
        return await super().claim_operations(limit, now=now, lease_until=lease_until)


class ForgetfulProcessor(SimulatedProcessor):
    """Decides every call afresh: a repeated operation id moves money again."""

    async def execute(self, request: ProcessorRequest) -> ProcessorResult:
        self._book.forget(request.operation_id)
        return await super().execute(request)
