"""Collections, the pure part: the policy (retry ladder, hard declines, reminders,
charge-off), how late a plan is, and the aging of a book of plans."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

import attrs

from paymentorch.domain.errors import FieldError, ValidationError
from paymentorch.domain.plans import RUNNING, Installment, Plan
from paymentorch.domain.plans.lifecycle import without_retries
from paymentorch.domain.plans.model import installment_of

LONGEST: Final = timedelta(days=366)
"""The longest retry delay or reminder offset."""
BUCKETS: Final = ("current", "1-29", "30-59", "60-89", "90+")
"""The aging buckets, by days past due."""
HARD_DECLINES: Final = frozenset({"account_closed", "card_lost", "card_stolen", "fraud_suspected"})


def _delays(
    field: str, value: object, errors: list[FieldError], *, whole: bool = False
) -> tuple[timedelta, ...]:
    """``value`` as a tuple of delays; ``whole``: each of whole seconds (what the stores
    keep of a reminder offset, so that every backend sends the same reminders)."""
    found = tuple(value) if isinstance(value, Iterable) else ()
    if (
        not isinstance(value, Iterable)
        or len(found) > 20
        or not all(
            isinstance(d, timedelta)
            and timedelta(0) < d <= LONGEST
            and not (whole and d % timedelta(seconds=1))
            for d in found
        )
    ):
        each = "of whole seconds, " if whole else ""
        message = f"must be at most 20 timedeltas, each {each}longer than 0 and at most 366 days"
        errors.append(FieldError(field, message, "range"))
    return found


def _codes(value: object, errors: list[FieldError]) -> frozenset[str]:
    if isinstance(value, Iterable) and not isinstance(value, str):
        codes = tuple(value)
        if all(isinstance(c, str) and 0 < len(c) <= 64 and "\0" not in c for c in codes):
            return frozenset(codes)
    message = "must be a set of decline codes of 1 to 64 characters"
    errors.append(FieldError("hard_declines", message, "format"))
    return frozenset()


@attrs.frozen
class CollectionPolicy:
    """How unpaid installments are collected.

    Attributes:
        retries: The delays after each soft decline of an installment's collection
            before the next attempt; a hard decline, or the ladder run out, stops
            automatic collection of the plan.
        hard_declines: The decline codes that are never retried (exact matches).
        reminders: Offsets before an installment's due date at which a
            ``plan.installment_due_soon`` event is written (whole seconds).
        charge_off_after: How long past the oldest unpaid due date a plan is charged
            off.
    """

    retries: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=3), timedelta(days=7))
    hard_declines: frozenset[str] = HARD_DECLINES
    reminders: tuple[timedelta, ...] = (timedelta(days=3),)
    charge_off_after: timedelta = timedelta(days=120)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        object.__setattr__(self, "retries", _delays("retries", self.retries, errors))
        reminders = _delays("reminders", self.reminders, errors, whole=True)
        object.__setattr__(self, "reminders", reminders)
        object.__setattr__(self, "hard_declines", _codes(self.hard_declines, errors))
        after = self.charge_off_after
        if not isinstance(after, timedelta) or not timedelta(days=1) <= after <= 10 * LONGEST:
            message = "must be a timedelta of at least 1 day and at most 3,660 days"
            errors.append(FieldError("charge_off_after", message, "range"))
        if errors:
            raise ValidationError(errors)

    def is_hard(self, code: str | None) -> bool:
        """Whether a decline with ``code`` is never retried."""
        return code in self.hard_declines

    def next_attempt(self, declines: int, declined_at: datetime) -> datetime | None:
        """When to try again after the ``declines``-th soft decline of an installment,
        recorded at ``declined_at``; None once the ladder has run out."""
        if not 1 <= declines <= len(self.retries):
            return None
        return declined_at + self.retries[declines - 1]


def _evolve(plan: Plan, installment: Installment, **changes: Any) -> Plan:
    changed = attrs.evolve(installment, **changes)
    return attrs.evolve(
        plan,
        installments=tuple(changed if i.number == installment.number else i
                           for i in plan.installments),
    )  # fmt: skip


def next_collection(plan: Plan, now: datetime) -> Installment | None:
    """The installment to collect now: the oldest unpaid one due by ``now`` never tried
    yet, or whose retry is due; None when the plan is not running or its collection
    stopped. (One collection of a plan at a time: the caller checks none is under way.)"""
    if plan.status not in RUNNING or plan.collection_stopped:
        return None
    return next((i for i in plan.installments if collectable(i, now)), None)


def collectable(installment: Installment, now: datetime) -> bool:
    """Whether ``installment`` is one to collect at ``now``: unpaid, due, and never tried
    or with its retry due (what a store's ``installments_due`` lists, plan aside)."""
    i, retry_at = installment, installment.next_attempt_at
    retry_due = retry_at is not None and retry_at <= now
    return i.unpaid and i.due_at <= now and (i.attempts == 0 or retry_due)


def attempted(plan: Plan, number: int) -> Plan:
    """``plan`` with one more collection of installment ``number`` sent (or queued)."""
    installment = installment_of(plan, number)
    return _evolve(plan, installment, attempts=installment.attempts + 1, next_attempt_at=None)


def declined(
    plan: Plan, number: int, code: str | None, at: datetime, policy: CollectionPolicy | None
) -> tuple[Plan, bool]:
    """``plan`` after a collection of installment ``number`` was declined with ``code``
    (recorded at ``at``): its next attempt on the policy's ladder, or (a hard decline,
    the ladder run out) automatic collection stopped; whether it stopped now. Without a
    policy nothing is retried and nothing stops: a person takes it from there."""
    installment = installment_of(plan, number)
    next_at = None
    if policy is not None and not policy.is_hard(code):
        next_at = policy.next_attempt(installment.attempts - installment.ladder_start, at)
    stops = policy is not None and next_at is None and plan.status in RUNNING
    after = _evolve(plan, installment, last_decline=code, next_attempt_at=next_at)
    if stops:  # nothing of the plan is retried any more
        after = without_retries(attrs.evolve(after, collection_stopped=True))
    return after, stops and not plan.collection_stopped


def resumed(plan: Plan, now: datetime) -> Plan:
    """``plan`` with automatic collection resumed: every unpaid installment due and
    declined before is collected at the next tick, each on a new ladder."""
    after = attrs.evolve(plan, collection_stopped=False)
    for i in plan.installments:
        if i.unpaid and i.due_at <= now and i.attempts:
            after = _evolve(after, i, next_attempt_at=now, ladder_start=i.attempts)
    return after


def reminders_due(
    plan: Plan, policy: CollectionPolicy, now: datetime
) -> list[tuple[int, timedelta]]:
    """(installment number, offset) of the reminders to write now: for each unpaid
    installment after the first, due after ``now``, the nearest offset passed and not
    written yet (an offset passed while none was written is skipped, not sent late);
    none while the plan is not running or its collection stopped."""
    if plan.status not in RUNNING or plan.collection_stopped:
        return []
    due = []
    for i in plan.installments:
        if i.number == 1 or not i.unpaid or i.due_at <= now:
            continue
        passed = [o for o in policy.reminders if i.due_at - o <= now
                  and (i.reminded is None or o < i.reminded)]  # fmt: skip
        if passed:
            due.append((i.number, min(passed)))
    return due


def reminded(plan: Plan, sent: Iterable[tuple[int, timedelta]]) -> Plan:
    """``plan`` with the reminders ``sent`` (installment number, offset) written."""
    for number, offset in sent:
        plan = _evolve(plan, installment_of(plan, number), reminded=offset)
    return plan


def charge_off_due(plan: Plan, policy: CollectionPolicy, now: datetime) -> bool:
    """Whether the oldest unpaid installment of running ``plan`` is ``charge_off_after``
    past due at ``now``."""
    due = [i.due_at for i in plan.installments if i.unpaid and i.due_at <= now]
    return plan.status in RUNNING and bool(due) and now - min(due) >= policy.charge_off_after


def notice(plan: Plan, number: int) -> dict[str, Any]:
    """What a notice about installment ``number`` needs (an event's payload part; the
    customer is the payload's own ``customer_id``)."""
    installment = installment_of(plan, number)
    return {
        "installment": number,
        "amount": str(plan.collection_amount(number)),
        "currency": plan.currency,
        "due_at": installment.due_at.isoformat(),
    }


def bucket(days: int) -> str:
    """The aging bucket of a plan ``days`` past due."""
    if days <= 0:
        return "current"
    if days >= 90:
        return "90+"
    low = days // 30 * 30
    return f"{max(low, 1)}-{low + 29}"


@attrs.frozen
class AgingBucket:
    """The plans of one bucket: how many, and their unpaid installments per currency."""

    count: int = 0
    outstanding: Mapping[str, Decimal] = attrs.field(factory=lambda: MappingProxyType({}))


@attrs.frozen
class AgingReport:
    """Running plans by days past due.

    Attributes:
        as_of: The time the plans were measured at.
        buckets: ``current``, ``1-29``, ``30-59``, ``60-89`` and ``90+``, in that order.
        fees: The running plans' unpaid late fees, per currency (apart from the buckets).
    """

    as_of: datetime
    buckets: Mapping[str, AgingBucket]
    fees: Mapping[str, Decimal]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values: amounts as exact strings."""
        return {
            "as_of": self.as_of.isoformat(),
            "buckets": {
                name: {
                    "count": b.count,
                    "outstanding": {c: str(a) for c, a in sorted(b.outstanding.items())},
                }
                for name, b in self.buckets.items()
            },
            "fees": {c: str(a) for c, a in sorted(self.fees.items())},
        }


class Tally:
    """An aging report counted one plan at a time (memory stays flat however many)."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self._counts = dict.fromkeys(BUCKETS, 0)
        self._owed: dict[str, dict[str, Decimal]] = {name: {} for name in BUCKETS}
        self._fees: dict[str, Decimal] = {}

    def add(self, plan: Plan) -> None:
        """Count ``plan`` if it is running."""
        if plan.status not in RUNNING:
            return
        name = bucket(plan.days_past_due(self.as_of))
        self._counts[name] += 1
        owed = self._owed[name]
        owed[plan.currency] = owed.get(plan.currency, Decimal(0)) + plan.owed
        if plan.fees_owed:
            self._fees[plan.currency] = self._fees.get(plan.currency, Decimal(0)) + plan.fees_owed

    def report(self) -> AgingReport:
        """What was counted."""
        buckets = {
            name: AgingBucket(self._counts[name], MappingProxyType(dict(self._owed[name])))
            for name in BUCKETS
        }
        return AgingReport(
            self.as_of, MappingProxyType(buckets), MappingProxyType(dict(self._fees))
        )


def aging(plans: Iterable[Plan], as_of: datetime) -> AgingReport:
    """The aging of the running ``plans`` at ``as_of`` (others, charged-off ones among
    them, are left out)."""
    tally = Tally(as_of)
    for plan in plans:
        tally.add(plan)
    return tally.report()


@attrs.frozen
class PlanPage:
    """One page of plans.

    Attributes:
        items: Plans, most days past due first.
        next_cursor: Pass it back for the next page; None on the last page.
    """

    items: list[Plan]
    next_cursor: str | None
