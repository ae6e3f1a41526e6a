"""Moving a payment through its life: confirm, authorize, capture, fail, cancel (one at a
time, idempotent by key, or confirmed in bulk)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import attrs

from paymentorch.domain import (
    Actor,
    Change,
    IdempotencyConflict,
    Operation,
    OperationKind,
    Payment,
    PaymentError,
    PaymentStatus,
    ValidationError,
    current_correlation_id,
    record_change,
    touched,
    transition,
)
from paymentorch.domain.requests import replay, request_key
from paymentorch.domain.results import BulkResult
from paymentorch.domain.transitions import ONE_STEP, Transition, transition_sources
from paymentorch.domain.validation import parse_ids

from .context import Context, bad
from .effects import planned
from .follow_ups import follow_up, held
from .pipeline import Decision, Found, LostRace, commit, step

HELD_ACTIONS = frozenset({"capture", "cancel", "fail"})
"""Actions on an Authorized payment that go through the processor holding its money."""


async def change(
    ctx: Context,
    action: str,
    payment_id: UUID | str,
    actor: Actor,
    *,
    reason: str | None = None,
    amount: object = None,
    key: str | None = None,
) -> Payment:
    """``action`` (``confirm``, ``authorize``, ``capture``, ``fail``, ``cancel``) on the
    payment; through the processor that holds its money when one does."""
    ctx.policy.check(actor, action)
    pid = ctx.id_and_reason(
        payment_id, reason, required=action == "fail", checked=action in {"fail", "cancel"}
    )
    if errors := ctx.validation.check_operation_key(key):
        raise ValidationError(errors)

    async def repeated(_refused: PaymentError) -> Payment | None:
        """The payment as the call that used ``key`` first left it, if there was one."""
        held = None if key is None else await ctx.store.find_request(actor.id, key)
        return None if held is None else replay(held, pid, action, amount=amount, reason=reason)

    found = Found()
    move = _one_step(ctx, action, pid, actor, reason, amount=amount, key=key)
    if move is not None:
        try:
            stepped = await step(ctx, move)
        except IdempotencyConflict as exc:  # the key is held: by this very request, or not
            if (answer := await repeated(exc)) is not None:
                return answer
            raise
        if stepped.written is not None:
            return stepped.written
        found = Found(stepped)

    async def decide(fresh: bool) -> Decision[Payment]:
        current = await found.payment(ctx, pid, fresh=fresh)
        wanted = None if amount is None else ctx.money(amount, current.currency)
        if current.has_plan and wanted not in (None, current.amount):
            raise bad("amount", "a payment paid in installments is captured whole", "plan")
        now = ctx.clock()
        new = transition(current, action, at=now, reason=reason, amount=wanted)
        kind, operation = action, None
        if action in HELD_ACTIONS and current.status is PaymentStatus.AUTHORIZED:
            original = await held(ctx, current, action)
            if original is not None:
                kind, new, operation = _through(
                    original, action, current, new, reason=reason, now=now
                )
        recorded = record_change(
            new,
            kind,
            from_status=current.status,
            actor_id=actor.id,
            reason=reason,
            correlation_id=current_correlation_id(),
            operation=operation,
        )
        recorded = await planned(
            ctx, recorded, current, kind, amount=wanted, plan=found.plan(current)
        )
        taken = (wanted or current.amount) if action == "capture" else None
        return Decision(new, change=_keyed(recorded, key, action, reason, taken))

    return await commit(ctx, decide, what=action, replay=repeated if key else None)


def _one_step(
    ctx: Context,
    action: str,
    pid: UUID,
    actor: Actor,
    reason: str | None,
    *,
    amount: object,
    key: str | None,
) -> Transition | None:
    """``action`` as one step the store decides (claiming ``key``, if given), from the
    statuses it starts from but those whose money a processor holds (those go through
    the processor); None when it takes the longer way: no status left, or an amount
    that is not plainly one a capture could take in any currency (the decision then
    says what is wrong)."""
    if action not in ONE_STEP or action == "refund":
        return None
    sources = transition_sources(action)
    if ctx.processor is not None and action in HELD_ACTIONS:
        sources -= {PaymentStatus.AUTHORIZED}
    taken = None
    if amount is not None:
        taken = ctx.validation.plain_amount(amount) if action == "capture" else None
        if taken is None:
            return None
    if not sources:
        return None
    return Transition(
        pid, action, sources, at=ctx.clock(), actor_id=actor.id, reason=reason,
        correlation_id=current_correlation_id(), amount=taken, key=key,
    )  # fmt: skip


def _through(
    original: Operation,
    action: str,
    current: Payment,
    new: Payment,
    *,
    reason: str | None,
    now: datetime,
) -> tuple[str, Payment, Operation]:
    """What ``action`` becomes when a processor holds the payment's authorization: a
    failure fails now and voids the hold; a capture or void is queued."""
    if action == "fail":
        void = follow_up(original, OperationKind.CANCEL, original.amount, reason, now)
        return action, new, void
    # A plan's capture collects installment 1, which is what was authorized.
    plain_capture = action == "capture" and not current.has_plan
    amount = new.captured_amount if plain_capture else original.amount
    operation = follow_up(original, OperationKind(action), amount, reason, now)
    return f"{action}_queued", touched(current, at=now), operation


def _keyed(
    change: Change, key: str | None, action: str, reason: str | None, taken: Decimal | None
) -> Change:
    """``change`` claiming ``key``, which keeps the payment as it leaves it for a repeat;
    ``taken`` is what a capture takes (the authorized amount when none was asked)."""
    if key is None:
        return change
    return attrs.evolve(change, request=request_key(key, action, amount=taken, reason=reason))


async def confirm_many(
    ctx: Context, payment_ids: Iterable[UUID | str], *, actor: Actor
) -> BulkResult:
    """Confirm every Pending payment among ``payment_ids``; say why others were skipped."""
    ctx.policy.check(actor, "confirm_payments")
    ids = parse_ids(payment_ids)
    found = await ctx.store.get_many(ids)
    skipped: dict[UUID, str] = {}
    changes: list[Change] = []
    correlation_id = current_correlation_id()
    now = ctx.clock()
    for pid in ids:
        payment = found.get(pid)
        if payment is None:
            skipped[pid] = "not found"
        elif payment.status is not PaymentStatus.PENDING:
            skipped[pid] = f"is {payment.status.value}"
        else:
            new = transition(payment, "confirm", at=now)
            recorded = record_change(
                new, "confirm", from_status=payment.status, actor_id=actor.id,
                correlation_id=correlation_id,
            )  # fmt: skip
            try:
                changes.append(await planned(ctx, recorded, payment, "confirm", amount=None))
            except LostRace:
                skipped[pid] = "changed concurrently"
    applied = (
        await ctx.store.apply_many(changes, expected=PaymentStatus.PENDING) if changes else set()
    )
    confirmed: list[Payment] = []
    for each in changes:
        payment = each.payment
        if payment.id in applied:
            confirmed.append(payment)
            await ctx.remember(payment)
            ctx.telemetry.payment_changed(payment)
        else:
            skipped[payment.id] = "changed concurrently: no longer Pending"
            await ctx.forget(payment.id)
    return BulkResult(confirmed, skipped)
