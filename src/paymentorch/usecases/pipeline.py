"""The commit pipeline: the one loop that writes a decision and decides again after a lost
race. Every use case that changes a payment goes through ``commit``; a plain status
transition first tries the one step a store decides by itself (``step``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar
from uuid import UUID

import attrs

from paymentorch.domain import (
    AmountExceeded,
    Change,
    IdempotencyConflict,
    InvalidTransition,
    Operation,
    Payment,
    PaymentError,
    PaymentStatus,
    StoreError,
)
from paymentorch.domain.plans import Plan
from paymentorch.domain.transitions import Stepped, Transition
from paymentorch.domain.validation import MAX_ATTEMPTS

from .context import Context, describe

T = TypeVar("T")


class LostRace(Exception):
    """The decision was made on a state that changed meanwhile: decide again on the store's."""


@attrs.frozen
class Decision(Generic[T]):
    """What one attempt decided.

    Attributes:
        result: What the use case answers once the write is done (or at once, when there
            is nothing to write).
        change: The payment's change to write, guarded by its status and version (its
            audit entry's ``from_status``, and the version before).
        settles: The state an operation must still be in for the write (its previous
            state): the write then stores ``operation`` and ``change`` together, or
            nothing.
        operation: The operation's new state, with ``settles``.
    """

    result: T
    change: Change | None = None
    settles: Operation | None = None
    operation: Operation | None = None

    @property
    def writes(self) -> bool:
        """Whether there is anything to write."""
        return self.change is not None or self.operation is not None


Replay = Callable[[PaymentError], Awaitable[T | None]]


async def commit(
    ctx: Context,
    decide: Callable[[bool], Awaitable[Decision[T]]],
    *,
    what: str,
    replay: Replay[T] | None = None,
) -> T:
    """Decide, write, publish; decide again after a lost race.

    ``decide(fresh)`` reads what it needs (through the cache, or from the store when
    ``fresh``; a plan with the payment's version, ``plan_of``) and returns a
    ``Decision``. A refusal by the domain (``InvalidTransition``, ``AmountExceeded``) on
    a copy that may be stale, a ``LostRace``, or a write whose guard no longer holds
    (someone changed the payment first, in this process or another) leads to another
    decision on the store's state, up to ``MAX_ATTEMPTS`` times.

    ``replay``, when given, is asked what an earlier call with the same idempotency key
    answered: when a fresh decision is refused, and when the write finds the key held
    (a repeat, or a race with the first call); it returns that answer, or None.
    Without it, a held key means the other call won a race: decide again (and find it).

    Raises:
        StoreError: the payment changed ``MAX_ATTEMPTS`` times in a row.
    """
    fresh = False
    for _ in range(MAX_ATTEMPTS):
        try:
            decision = await decide(fresh)
        except LostRace:
            fresh = True
            continue
        except (InvalidTransition, AmountExceeded) as exc:
            if not fresh:  # a cached copy may be behind: decide on the store's
                fresh = True
                continue
            if replay is not None and (answer := await replay(exc)) is not None:
                return answer
            raise
        if not decision.writes:
            return decision.result
        try:
            written = await _write(ctx, decision)
        except IdempotencyConflict as exc:
            if replay is None:
                written = False  # the key's first call won: the next decision finds it
            elif (answer := await replay(exc)) is not None:
                return answer
            else:
                raise
        if written:
            await _publish(ctx, decision.change)
            return decision.result
        fresh = True
    raise StoreError(f"the payment changed {MAX_ATTEMPTS} times while {what} waited")


async def _write(ctx: Context, decision: Decision[T]) -> bool:
    change, previous, operation = decision.change, decision.settles, decision.operation
    if previous is not None and operation is not None:
        return await ctx.store.settle(previous, operation, change)
    if change is None:
        raise StoreError("a decision wrote an operation without the state it settles")
    return await ctx.store.apply(change, expected=_expected(change))


def _expected(change: Change) -> PaymentStatus:
    status = change.audit.from_status
    if status is None:
        raise StoreError("a change of an existing payment lacks the status it starts from")
    return status


async def plan_of(ctx: Context, payment: Payment) -> Plan | None:
    """``payment``'s plan as it stood at ``payment``'s version (read with the payment,
    as of one moment); None without one.

    Raises:
        LostRace: the payment has changed since ``payment`` was read.
    """
    if not payment.has_plan:
        return None
    found = await ctx.store.get_with_plan(payment.id)
    if found is None or found[0].version != payment.version:
        raise LostRace
    return found[1]


async def step(ctx: Context, move: Transition) -> Stepped:
    """Have the store decide and write ``move`` in one step, and publish what it wrote.
    When it wrote nothing (the payment is missing, in another status, has a plan, or the
    store does not decide by itself), ``commit`` decides, and says why: its first
    decision on what the store found (``Found``), later ones on what they read."""
    stepped = await ctx.store.transition(move)
    if (written := stepped.written) is not None:
        await _published(ctx, written, changed=written.status not in move.sources)
    return stepped


class Found:
    """What the one step found, for the first decision only: the payment as the store
    found it (as fresh as a read) and, if the store read it too, its plan. A decision
    after it (after a refusal on a copy that may be stale, or a lost race) reads again."""

    __slots__ = ("_decided_on", "_payment", "_plan")

    def __init__(self, stepped: Stepped | None = None) -> None:
        self._payment = None if stepped is None else stepped.found
        self._plan = None if stepped is None else stepped.plan
        self._decided_on: Payment | None = None

    async def payment(self, ctx: Context, pid: UUID, *, fresh: bool) -> Payment:
        """The payment the step found, the first time; then through the cache, or
        (``fresh``) from the store.

        Raises:
            PaymentNotFound: no payment has this id.
        """
        found, self._payment = self._payment, None
        self._decided_on = found
        return found if found is not None else await ctx.read(pid, fresh=fresh)

    def plan(self, payment: Payment) -> Plan | None:
        """The plan the step found with ``payment``, when ``payment`` is what it found;
        else None (read it)."""
        return self._plan if payment is self._decided_on else None


async def _publish(ctx: Context, change: Change | None) -> None:
    """What follows a committed change: the cache, the span, the transition count."""
    if change is not None:
        payment = change.payment
        await _published(ctx, payment, changed=payment.status is not change.audit.from_status)


async def _published(ctx: Context, payment: Payment, *, changed: bool) -> None:
    await ctx.remember(payment)
    describe(payment)
    if changed:
        ctx.telemetry.payment_changed(payment)
