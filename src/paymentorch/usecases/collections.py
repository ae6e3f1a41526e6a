"""Collections: how late the book is (the aging report) and who is late (the delinquent
plans), read on the service's clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from paymentorch.domain import FieldError, ValidationError
from paymentorch.domain.collections import AgingReport, PlanPage, Tally
from paymentorch.domain.cursor import Keyset, encode_position, page_position
from paymentorch.domain.plans import RUNNING, Plan

from .context import Context

BATCH = 500
_DELINQUENT = "d|"  # this listing's cursors, which list_payments refuses (and the reverse)


async def _running(ctx: Context, listed: list[tuple[UUID, datetime]]) -> list[Plan]:
    """The plans ``listed`` still running now (one may have moved since it was listed)."""
    found = [await ctx.store.plan(pid) for pid, _ in listed]
    return [plan for plan in found if plan is not None and plan.status in RUNNING]


async def report(ctx: Context, as_of: datetime | None) -> AgingReport:
    """Running plans by days past due at ``as_of`` (now when None), read in batches."""
    if as_of is not None and (not isinstance(as_of, datetime) or as_of.tzinfo is None):
        raise ValidationError([FieldError("as_of", "must be a datetime with a time zone", "type")])
    tally = Tally(ctx.clock() if as_of is None else as_of)
    after: Keyset | None = None
    while batch := await ctx.store.plans_by_age(after=after, limit=BATCH):
        for plan in await _running(ctx, batch):
            tally.add(plan)
        after = batch[-1][1], batch[-1][0]
    return tally.report()


async def delinquent(ctx: Context, limit: int, cursor: str | None) -> PlanPage:
    """Plans at least a day past due, most days first, ties by payment id."""
    errors: list[FieldError] = []
    after = page_position(limit, cursor, errors, _DELINQUENT, "delinquent_plans")
    if errors:
        raise ValidationError(errors)
    now = ctx.clock()
    late_since = now - timedelta(days=1)
    items: list[tuple[Plan, Keyset]] = []
    while len(items) <= limit:
        batch = await ctx.store.plans_by_age(after=after, limit=limit + 1)
        late = [(pid, oldest) for pid, oldest in batch if oldest <= late_since]
        if late:
            plans = {plan.payment_id: plan for plan in await _running(ctx, late)}
            items += [
                (plans[pid], (oldest, pid))
                for pid, oldest in late
                if pid in plans and plans[pid].days_past_due(now) >= 1
            ]
            after = late[-1][1], late[-1][0]
        if len(late) < len(batch) or len(batch) <= limit:
            break
    if len(items) > limit:
        cursor = encode_position(items[limit - 1][1], _DELINQUENT)
        return PlanPage([plan for plan, _ in items[:limit]], cursor)
    return PlanPage([plan for plan, _ in items], None)
