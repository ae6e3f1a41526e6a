"""Collections: how late the book is (the aging report) and who is late (the delinquent
plans), read on the service's clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from paymentorch.domain import FieldError, ValidationError
from paymentorch.domain.collections import AgingReport, PlanPage, Tally
from paymentorch.domain.cursor import Keyset, encode_position, page_position
from paymentorch.domain.plans import RUNNING, Plan

from .context import Context

BATCH = 500
DAY = timedelta(days=1)
_LAST = UUID(int=2**128 - 1)  # after (t, _LAST): strictly after t
_DELINQUENT = "d|"  # this listing's cursors, which list_payments refuses (and the reverse)


async def _running(ctx: Context, listed: Iterable[UUID]) -> list[Plan]:
    """The plans ``listed`` still running now (one may have moved since it was listed)."""
    found = [await ctx.store.plan(pid) for pid in listed]
    return [plan for plan in found if plan is not None and plan.status in RUNNING]


async def report(ctx: Context, as_of: datetime | None) -> AgingReport:
    """Running plans by days past due at ``as_of`` (now when None), read in batches."""
    if as_of is not None and (not isinstance(as_of, datetime) or as_of.tzinfo is None):
        raise ValidationError([FieldError("as_of", "must be a datetime with a time zone", "type")])
    tally = Tally(ctx.clock() if as_of is None else as_of)
    after: Keyset | None = None
    while batch := await ctx.store.plans_by_age(after=after, limit=BATCH):
        for plan in await _running(ctx, (pid for pid, _ in batch)):
            tally.add(plan)
        after = batch[-1][1], batch[-1][0]
    return tally.report()


async def delinquent(ctx: Context, limit: int, cursor: str | None) -> PlanPage:
    """Plans at least a day past due, most days first, ties by payment id.

    Plans are read by oldest unpaid due date, a whole day at a time: the plans of one day
    are the plans of one count of days past due, which go by payment id. A cursor keeps
    the day's bounds it was made with, so pages taken later go on from the same place.
    """
    errors: list[FieldError] = []
    after = page_position(limit, cursor, errors, _DELINQUENT, "delinquent_plans")
    if errors:
        raise ValidationError(errors)
    now = ctx.clock()
    # A day is (until - DAY, until]; past it, the listing goes on with the pids after.
    if after is not None:
        until, past = after[0], after[1]
    else:
        first = await ctx.store.plans_by_age(after=None, limit=1)
        if not first:
            return PlanPage([], None)
        until, past = now - (now - first[0][1]).days * DAY, None
    items: list[tuple[UUID, Keyset]] = []
    while len(items) <= limit and until <= now - DAY:
        day, following = await _day(ctx, until)
        items += [(pid, (until, pid)) for pid in sorted(day) if past is None or pid > past]
        if following is None:
            break
        until, past = until + -((until - following) // DAY) * DAY, None
    plans = {
        plan.payment_id: plan
        for plan in await _running(ctx, (pid for pid, _ in items[: limit + 1]))
    }
    found = [(plans[pid], key) for pid, key in items[: limit + 1] if pid in plans]
    if len(items) > limit:
        return PlanPage(
            [plan for plan, _ in found[:limit]], encode_position(items[limit - 1][1], _DELINQUENT)
        )
    return PlanPage([plan for plan, _ in found], None)


async def _day(ctx: Context, until: datetime) -> tuple[list[UUID], datetime | None]:
    """The running plans whose oldest unpaid due date is in the day ``(until - DAY,
    until]``, and the first such date after it (None when there is none)."""
    found: list[UUID] = []
    after: Keyset = (until - DAY, _LAST)
    while batch := await ctx.store.plans_by_age(after=after, limit=BATCH):
        for pid, oldest in batch:
            if oldest > until:
                return found, oldest
            found.append(pid)
        after = batch[-1][1], batch[-1][0]
    return found, None
