"""Installment plans (pay-in-N): the schedule, refund allocation and late fees, pure.

Amounts are exact: every split works in whole minor units of the currency (cents for
USD, yen for JPY, fils for KWD), so installments always add up to the order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal, cast
from uuid import UUID

import attrs

from paymentorch.domain.errors import FieldError, ValidationError
from paymentorch.domain.money import currency_exponent, decimal_places, minor_unit, parse_amount

_ZERO = Decimal(0)
MAX_INTERVAL = timedelta(days=366)
"""The longest interval between installments (60 of them then span 59 years)."""
MAX_FEE = Decimal(1_000_000)
"""The largest amount a late-fee policy may name, in major units."""
MAX_DELAY = timedelta(days=3660)
"""The longest grace period or repeat delay a late-fee policy may set."""


@attrs.frozen
class PlanTerms:
    """How an order becomes installments.

    Attributes:
        installments: How many (2 to 60); the first is due at purchase.
        interval: Between due dates (whole seconds, more than zero and at most 366 days;
            two weeks by default).
        remainder: Which installment takes the minor units an even split leaves over:
            ``first`` (Afterpay: $57.27 is 14.32, 14.32, 14.32, 14.31) or ``last``.
        refund_allocation: How a refund reduces what is owed: ``last_first`` (Afterpay:
            from the last installment backwards) or ``even`` (Klarna: spread evenly over
            the unpaid installments).
    """

    installments: int = 4
    interval: timedelta = timedelta(days=14)
    remainder: Literal["first", "last"] = "first"
    refund_allocation: Literal["last_first", "even"] = "last_first"

    def __attrs_post_init__(self) -> None:
        errors = []
        count = self.installments
        if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= 60:
            errors.append(
                FieldError("installments", "must be a whole number from 2 to 60", "range")
            )
        interval = self.interval
        if (
            not isinstance(interval, timedelta)
            or interval <= timedelta(0)
            or interval > MAX_INTERVAL
            or interval % timedelta(seconds=1)
        ):
            message = "must be a timedelta of whole seconds, longer than 0 and at most 366 days"
            errors.append(FieldError("interval", message, "range"))
        if self.remainder not in ("first", "last"):
            errors.append(FieldError("remainder", "must be 'first' or 'last'", "choice"))
        if self.refund_allocation not in ("last_first", "even"):
            errors.append(
                FieldError("refund_allocation", "must be 'last_first' or 'even'", "choice")
            )
        if errors:
            raise ValidationError(errors)


class InstallmentStatus(enum.StrEnum):
    """Where one installment is."""

    SCHEDULED = "scheduled"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"


UNPAID = frozenset({InstallmentStatus.SCHEDULED, InstallmentStatus.OVERDUE})


@attrs.frozen
class Installment:
    """One installment of a plan.

    Attributes:
        number: From 1; installment 1 is due at purchase.
        amount: What it asks for now (a refund may have reduced it; 0 once cancelled).
        due_at: When it is due (UTC).
        status: ``scheduled``, ``paid``, ``overdue`` or ``cancelled``.
        paid_at: When it was paid.
        refunded_amount: What refunds gave back against it, once paid.
    """

    number: int
    amount: Decimal
    due_at: datetime
    status: InstallmentStatus = InstallmentStatus.SCHEDULED
    paid_at: datetime | None = None
    refunded_amount: Decimal = _ZERO

    @property
    def unpaid(self) -> bool:
        """Whether it is still owed (scheduled or overdue)."""
        return self.status in UNPAID


class PlanStatus(enum.StrEnum):
    """Where a plan is."""

    PENDING = "pending"
    ACTIVE = "active"
    DELINQUENT = "delinquent"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


RUNNING = frozenset({PlanStatus.ACTIVE, PlanStatus.DELINQUENT})
"""Plans whose installments are collected, go overdue and are paid."""


@attrs.frozen
class LateFee:
    """A late fee charged on a plan. It belongs to its installment: the installment's next
    collection takes it too, and waiving the installment waives it.

    Attributes:
        installment: The installment that was late.
        amount: What the fee is.
        charged_at: When it was charged.
        paid_at: When it was paid, with its installment.
        waived_at: When it was waived: with its installment, or because a refund
            cancelled that installment.
    """

    installment: int
    amount: Decimal
    charged_at: datetime
    paid_at: datetime | None = None
    waived_at: datetime | None = None

    @property
    def unpaid(self) -> bool:
        """Whether it is still owed."""
        return self.paid_at is None and self.waived_at is None


@attrs.frozen
class Plan:
    """A payment's installment plan.

    Attributes:
        payment_id: The payment (the order) it belongs to.
        order_amount: The order's amount.
        currency: The order's currency.
        terms: The terms it was made with.
        status: ``pending`` until the payment is confirmed, then ``active``,
            ``delinquent`` while an installment is overdue, ``completed`` when nothing is
            owed, ``cancelled`` when the whole order was refunded.
        installments: In order.
        late_fees: Charged so far, oldest first.
    """

    payment_id: UUID
    order_amount: Decimal
    currency: str
    terms: PlanTerms
    status: PlanStatus
    installments: tuple[Installment, ...]
    late_fees: tuple[LateFee, ...] = ()

    def installment(self, number: int) -> Installment | None:
        """Installment ``number``, or None."""
        return next((i for i in self.installments if i.number == number), None)

    @property
    def owed(self) -> Decimal:
        """What the customer still owes, late fees aside."""
        return sum((i.amount for i in self.installments if i.unpaid), _ZERO)

    @property
    def fees_owed(self) -> Decimal:
        """The late fees still owed."""
        return sum((f.amount for f in self.late_fees if f.unpaid), _ZERO)

    def collection_amount(self, number: int) -> Decimal:
        """What collecting installment ``number`` takes: its amount and its unpaid fees."""
        installment = _installment(self, number)
        fees = (f.amount for f in self.late_fees if f.installment == number and f.unpaid)
        return installment.amount + sum(fees, _ZERO)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values: amounts as exact strings, times in ISO 8601."""
        return {
            "payment_id": str(self.payment_id),
            "status": self.status.value,
            "order_amount": str(self.order_amount),
            "currency": self.currency,
            "owed": str(self.owed),
            "installments": [
                {
                    "number": i.number,
                    "amount": str(i.amount),
                    "due_at": i.due_at.isoformat(),
                    "status": i.status.value,
                    "paid_at": None if i.paid_at is None else i.paid_at.isoformat(),
                    "refunded_amount": str(i.refunded_amount),
                }
                for i in self.installments
            ],
            "fees_owed": str(self.fees_owed),
            "late_fees": [
                {
                    "installment": f.installment,
                    "amount": str(f.amount),
                    "charged_at": f.charged_at.isoformat(),
                    "paid_at": None if f.paid_at is None else f.paid_at.isoformat(),
                    "waived_at": None if f.waived_at is None else f.waived_at.isoformat(),
                }
                for f in self.late_fees
            ],
        }


def _unit(currency: str) -> Decimal:
    exponent = currency_exponent(currency)
    if exponent is None:
        raise ValidationError([FieldError("currency", f"{currency!r} is not payable", "currency")])
    return minor_unit(exponent)


def _units(amount: Decimal, unit: Decimal) -> int:
    units = amount / unit
    if units != units.to_integral_value():
        raise ValidationError(
            [FieldError("amount", "has more decimals than the currency", "scale")]
        )
    return int(units)


def split(amount: Decimal, currency: str, parts: int, *, remainder: str = "first") -> list[Decimal]:
    """``amount`` in ``parts`` that differ by at most one minor unit and add up exactly;
    the leftover units go to the first parts (``remainder="first"``) or the last."""
    unit = _unit(currency)
    total = _units(amount, unit)
    if total < parts:
        message = f"is too small to pay in {parts}: each part needs one minor unit at least"
        raise ValidationError([FieldError("amount", message, "too_small")])
    base, extra = divmod(total, parts)
    counts = [base + 1 if i < extra else base for i in range(parts)]
    if remainder == "last":
        counts.reverse()
    return [(unit * c).quantize(unit) for c in counts]


def schedule(
    amount: Decimal, currency: str, terms: PlanTerms, start: datetime
) -> list[Installment]:
    """The installments of an order of ``amount``: the first due at ``start``, the others
    every ``terms.interval`` after; they add up to ``amount`` exactly."""
    parts = split(amount, currency, terms.installments, remainder=terms.remainder)
    return [
        Installment(number=n, amount=part, due_at=start + terms.interval * (n - 1))
        for n, part in enumerate(parts, start=1)
    ]


@attrs.frozen
class Allocation:
    """What a refund does to a plan's installments.

    Attributes:
        installments: The installments after the refund: unpaid ones reduced (and
            ``cancelled`` at zero), paid ones with more ``refunded_amount``.
        reduced: How much less the customer owes.
        returned: How much goes back to the customer, against paid installments.
        forgiven: What falls on installments already waived: nobody owes it, and nothing
            goes back for it.
    """

    installments: tuple[Installment, ...]
    reduced: Decimal
    returned: Decimal
    forgiven: Decimal = _ZERO


def allocate_refund(
    installments: Sequence[Installment], amount: Decimal, currency: str, how: str
) -> Allocation:
    """Apply a refund of ``amount``: first to what is still owed (``last_first``: from
    the last installment backwards; ``even``: spread evenly over the unpaid ones), then
    what exceeds it back against paid installments, from the last paid backwards, and
    what is left against waived ones (nothing goes back for those).

    Raises:
        ValidationError: more than the order has left to refund.
    """
    unit = _unit(currency)
    left = _units(amount, unit)
    by_number = {i.number: i for i in installments}
    owed = {i.number: _units(i.amount, unit) for i in installments if i.unpaid}
    take = _take_last_first(owed, left) if how == "last_first" else _take_even(owed, left)
    left -= sum(take.values())
    reduced = sum(take.values())
    for number, units in take.items():
        current = by_number[number]
        remaining = owed[number] - units
        by_number[number] = attrs.evolve(
            current,
            amount=(unit * remaining).quantize(unit),
            status=InstallmentStatus.CANCELLED if remaining == 0 else current.status,
        )
    returned = 0
    for number in sorted((i.number for i in installments if i.status is InstallmentStatus.PAID),
                         reverse=True):  # fmt: skip
        if not left:
            break
        paid = by_number[number]
        room = _units(paid.amount - paid.refunded_amount, unit)
        back = min(room, left)
        by_number[number] = attrs.evolve(paid, refunded_amount=paid.refunded_amount + unit * back)
        left -= back
        returned += back
    forgiven = 0
    cancelled = [i.number for i in installments if i.status is InstallmentStatus.CANCELLED]
    for number in sorted(cancelled, reverse=True):
        waived = by_number[number]
        absorbed = min(_units(waived.amount, unit), left)
        if absorbed:
            by_number[number] = attrs.evolve(
                waived, amount=(waived.amount - unit * absorbed).quantize(unit)
            )
            left -= absorbed
            forgiven += absorbed
    if left:
        raise ValidationError(
            [FieldError("amount", "is more than the plan has left to refund", "too_large")]
        )
    return Allocation(
        tuple(by_number[i.number] for i in installments),
        (unit * reduced).quantize(unit),
        (unit * returned).quantize(unit),
        (unit * forgiven).quantize(unit),
    )


def _take_last_first(owed: dict[int, int], units: int) -> dict[int, int]:
    take: dict[int, int] = {}
    for number in sorted(owed, reverse=True):
        if not units:
            break
        take[number] = min(owed[number], units)
        units -= take[number]
    return take


def _take_even(owed: dict[int, int], units: int) -> dict[int, int]:
    # Evenly, in whole minor units: an installment smaller than its share is cancelled
    # and the rest is shared again among the others; leftover units go to the earliest.
    take = dict.fromkeys(owed, 0)
    open_ = sorted(n for n, u in owed.items() if u)
    while units and open_:
        share, extra = divmod(units, len(open_))
        small = [n for n in open_ if owed[n] - take[n] <= share]
        if small:
            for number in small:
                units -= owed[number] - take[number]
                take[number] = owed[number]
            open_ = [n for n in open_ if n not in small]
            continue
        for index, number in enumerate(open_):
            take[number] += share + (1 if index < extra else 0)
        units = 0
    return {n: u for n, u in take.items() if u}


@attrs.frozen
class LateFeePolicy:
    """When and how much a late installment costs.

    An installment unpaid after ``due_at + grace`` is overdue and charged ``first_fee``;
    ``repeat_fee`` once more if it is still unpaid ``repeat_after`` later. A plan's fees
    never add up to more than the lesser of ``cap_percent`` of the order and
    ``cap_amount`` (the fee that reaches the cap is charged in part); orders below
    ``single_fee_below`` are charged one fee at most. ``tiers`` (see ``tiered``) choose
    the fee and the cap by the order's amount instead. ``currency`` is the currency the
    amounts are in: a policy applies to plans in that currency only (the service's
    default currency when None), and its amounts must fit the currency's minor unit.

    Afterpay (Australia): ``LateFeePolicy(Decimal(10), Decimal(7), cap_percent=25,
    cap_amount=Decimal(68), single_fee_below=Decimal(40), currency="AUD")``.

    Raises:
        ValidationError: an amount that is not an exact amount from 0 to 1,000,000 in the
            currency, a percentage outside 0..100, or a delay outside 0..3,660 days.
    """

    first_fee: Decimal
    repeat_fee: Decimal | None = None
    repeat_after: timedelta = timedelta(days=7)
    grace: timedelta = timedelta(0)
    cap_percent: Decimal | int | None = None
    cap_amount: Decimal | None = None
    single_fee_below: Decimal | None = None
    tiers: tuple[tuple[Decimal, Decimal, Decimal], ...] = ()
    currency: str | None = None

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        exponent = None
        if self.currency is not None:
            code = self.currency.upper() if isinstance(self.currency, str) else ""
            exponent = currency_exponent(code) if len(code) == 3 else None
            if exponent is None:
                errors.append(FieldError("currency", "must be an active ISO 4217 code", "unknown"))
            else:
                object.__setattr__(self, "currency", code)

        def amount(name: str, value: object, *, required: bool = False) -> Decimal | None:
            if value is None and not required:
                return None
            found = _policy_amount(name, value, exponent, errors)
            return found if found is not None else _ZERO

        object.__setattr__(self, "first_fee", amount("first_fee", self.first_fee, required=True))
        for name in ("repeat_fee", "cap_amount", "single_fee_below"):
            object.__setattr__(self, name, amount(name, getattr(self, name)))
        if self.cap_percent is not None:
            percent = parse_amount(self.cap_percent)
            if isinstance(percent, str) or not 0 <= percent <= 100:
                errors.append(FieldError("cap_percent", "must be a number from 0 to 100", "range"))
            else:
                object.__setattr__(self, "cap_percent", percent)
        for name in ("repeat_after", "grace"):
            delay = getattr(self, name)
            if not isinstance(delay, timedelta) or not timedelta(0) <= delay <= MAX_DELAY:
                message = "must be a timedelta from 0 to 3,660 days"
                errors.append(FieldError(name, message, "range"))
        rows: list[tuple[Decimal, Decimal, Decimal]] = []
        for index, row in enumerate(cast(tuple[object, ...], self.tiers)):
            if not isinstance(row, tuple) or len(row) != 3:
                errors.append(FieldError(f"tiers[{index}]", "must be three amounts", "type"))
                continue
            low, fee, most = (
                amount(f"tiers[{index}].{part}", value, required=True) or _ZERO
                for part, value in zip(("min_order", "fee", "max_total"), row, strict=True)
            )
            rows.append((low, fee, most))
        object.__setattr__(self, "tiers", tuple(sorted(rows)))
        if errors:
            raise ValidationError(errors)

    @classmethod
    def tiered(
        cls,
        tiers: Sequence[tuple[Decimal | int | str, Decimal | int | str, Decimal | int | str]],
        *,
        grace: timedelta = timedelta(0),
        currency: str | None = None,
    ) -> LateFeePolicy:
        """A table of ``(min_order, fee_per_late_installment, max_total)`` rows, as
        Klarna publishes them; an order below every ``min_order`` pays no fee."""
        rows = tuple(tuple(row) for row in tiers)
        return cls(first_fee=_ZERO, grace=grace, tiers=rows, currency=currency)  # type: ignore[arg-type]

    def for_currency(self, currency: str) -> LateFeePolicy:
        """This policy for plans in ``currency`` (it must fit; one without a currency is
        given it).

        Raises:
            ValidationError: the policy is in another currency, or its amounts have more
                decimals than ``currency`` allows.
        """
        if self.currency is None:
            return attrs.evolve(self, currency=currency)
        if self.currency != currency.upper():
            message = f"is {self.currency}, not {currency.upper()}"
            raise ValidationError([FieldError("currency", message, "mismatch")])
        return self

    def terms_for(self, order: Decimal) -> tuple[Decimal, Decimal | None, Decimal | None]:
        """(first fee, repeat fee, cap) for an order of ``order``."""
        if self.tiers:
            found = [row for row in self.tiers if order >= row[0]]
            return (found[-1][1], None, found[-1][2]) if found else (_ZERO, None, _ZERO)
        caps = [c for c in (self.cap_amount,) if c is not None]
        if self.cap_percent is not None:
            caps.append(order * Decimal(self.cap_percent) / 100)
        return self.first_fee, self.repeat_fee, min(caps) if caps else None


def fee_policies(
    policies: LateFeePolicy | Iterable[LateFeePolicy] | None, default_currency: str
) -> dict[str, LateFeePolicy]:
    """Late-fee policies by the currency each applies to (a policy without a currency
    applies to ``default_currency``).

    Raises:
        ValidationError: something that is not a ``LateFeePolicy``, two policies for one
            currency, or amounts with more decimals than their currency allows.
    """
    if policies is None:
        return {}
    listed = [policies] if isinstance(policies, LateFeePolicy) else list(policies)
    found: dict[str, LateFeePolicy] = {}
    for given in listed:
        if not isinstance(cast(object, given), LateFeePolicy):
            message = "must be a LateFeePolicy or several, one per currency"
            raise ValidationError([FieldError("late_fees", message, "type")])
        policy = given.for_currency(given.currency or default_currency)
        currency = cast(str, policy.currency)
        if currency in found:
            message = f"has two policies for {currency}"
            raise ValidationError([FieldError("late_fees", message, "duplicate")])
        found[currency] = policy
    return found


def _policy_amount(
    name: str, value: object, exponent: int | None, errors: list[FieldError]
) -> Decimal | None:
    amount = parse_amount(value)
    if isinstance(amount, str):
        errors.append(FieldError(name, amount, "type"))
        return None
    if not _ZERO <= amount <= MAX_FEE:
        errors.append(FieldError(name, f"must be from 0 to {MAX_FEE}", "range"))
        return None
    if exponent is not None and decimal_places(amount) > exponent:
        message = f"has more decimals than the currency's {exponent}"
        errors.append(FieldError(name, message, "too_many_decimals"))
        return None
    return amount


def overdue(
    installment: Installment,
    policy: LateFeePolicy | None,
    now: datetime,
    busy: frozenset[int] = frozenset(),
) -> bool:
    """Whether ``installment`` is late: unpaid after its due date and the grace period,
    and not ``busy`` (a collection of it under way, or held back by a waiting refund)."""
    grace = policy.grace if policy is not None else timedelta(0)
    return (
        installment.unpaid and installment.number not in busy and now > installment.due_at + grace
    )


def fees_due(
    plan: Plan, policy: LateFeePolicy, now: datetime, busy: frozenset[int] = frozenset()
) -> list[LateFee]:
    """The late fees to charge on ``plan`` at ``now``, within the policy's caps; none for
    a ``busy`` installment."""
    unit = _unit(plan.currency)
    first, repeat, cap = policy.terms_for(plan.order_amount)
    charged = sum((f.amount for f in plan.late_fees), _ZERO)
    room = None if cap is None else (cap - charged).quantize(unit, rounding=ROUND_DOWN)
    single = policy.single_fee_below is not None and plan.order_amount < policy.single_fee_below
    count = {i.number: 0 for i in plan.installments}
    for charged_fee in plan.late_fees:
        count[charged_fee.installment] += 1
    new: list[LateFee] = []
    for installment in plan.installments:
        if not overdue(installment, policy, now, busy):
            continue
        late_since = installment.due_at + policy.grace
        wanted = []
        if count[installment.number] == 0:
            wanted.append(first)
        again = count[installment.number] + len(wanted) == 1
        if repeat is not None and again and now >= late_since + policy.repeat_after:
            wanted.append(repeat)
        for amount in wanted:
            if single and (plan.late_fees or new):
                return new
            fee = amount if room is None else min(amount, room)
            if fee <= 0:
                return new
            new.append(LateFee(installment.number, fee.quantize(unit), now))
            if room is not None:
                room -= fee
    return new


def new_plan(
    payment_id: UUID, amount: Decimal, currency: str, terms: PlanTerms, start: datetime
) -> Plan:
    """The plan of a new order: ``pending`` until its payment is confirmed."""
    installments = tuple(schedule(amount, currency, terms, start))
    return Plan(payment_id, amount, currency, terms, PlanStatus.PENDING, installments)


def _settled_status(plan: Plan) -> PlanStatus:
    unpaid = [i for i in plan.installments if i.unpaid]
    if not unpaid and not any(f.unpaid for f in plan.late_fees):
        return (
            PlanStatus.CANCELLED
            if refunded_total(plan) == plan.order_amount
            else (PlanStatus.COMPLETED)
        )
    if any(i.status is InstallmentStatus.OVERDUE for i in unpaid):
        return PlanStatus.DELINQUENT
    return PlanStatus.ACTIVE


def refunded_total(plan: Plan) -> Decimal:
    """What refunds took off the order: reductions of what was owed, and money back.

    A waived installment keeps its amount (it was forgiven, not refunded); one a refund
    cancelled is reduced to zero.
    """
    unpaid = sum(
        (
            i.amount
            for i in plan.installments
            if i.unpaid or i.status is InstallmentStatus.CANCELLED
        ),
        _ZERO,
    )
    paid = sum(
        (i.amount - i.refunded_amount for i in plan.installments
         if i.status is InstallmentStatus.PAID),
        _ZERO,
    )  # fmt: skip
    return plan.order_amount - unpaid - paid


def _installment(plan: Plan, number: int) -> Installment:
    for installment in plan.installments:
        if installment.number == number:
            return installment
    raise ValidationError(
        [FieldError("number", f"the plan has no installment {number}", "missing")]
    )


def _replace(plan: Plan, installment: Installment) -> tuple[Installment, ...]:
    return tuple(installment if i.number == installment.number else i for i in plan.installments)


def activate(plan: Plan, at: datetime) -> Plan:
    """The order is confirmed: installment 1, due at purchase, is paid; the plan runs."""
    first = attrs.evolve(_installment(plan, 1), status=InstallmentStatus.PAID, paid_at=at)
    active = attrs.evolve(plan, installments=_replace(plan, first))
    return attrs.evolve(active, status=_settled_status(active))


def pay(plan: Plan, number: int, at: datetime, *, amount: Decimal | None = None) -> Plan:
    """Installment ``number`` is paid with its unpaid late fees (``amount``, when given,
    is what was collected: it must be exactly that); the plan is completed when nothing
    is owed.

    Raises:
        ValidationError: no such installment, it is not owed (paid or cancelled), the
            plan is not running, or ``amount`` is not what the installment asks for.
    """
    owed = _owed(plan, number)
    due = plan.collection_amount(number)
    if amount is not None and amount != due:
        why = f"{amount} was collected, but installment {number} asks for {due}"
        raise ValidationError([FieldError("amount", why, "mismatch")])
    paid = attrs.evolve(owed, status=InstallmentStatus.PAID, paid_at=at)
    after = attrs.evolve(
        plan,
        installments=_replace(plan, paid),
        late_fees=_settle_fees(plan.late_fees, {number}, paid_at=at),
    )
    return attrs.evolve(after, status=_settled_status(after))


def waive(plan: Plan, number: int, at: datetime) -> Plan:
    """Installment ``number`` is forgiven with its unpaid fees: no longer owed
    (``cancelled``, its amount kept to show what was waived); the plan is completed when
    nothing else is owed.

    Raises:
        ValidationError: as ``pay``.
    """
    waived = attrs.evolve(_owed(plan, number), status=InstallmentStatus.CANCELLED)
    after = attrs.evolve(
        plan,
        installments=_replace(plan, waived),
        late_fees=_settle_fees(plan.late_fees, {number}, waived_at=at),
    )
    return attrs.evolve(after, status=_settled_status(after))


def _settle_fees(
    fees: tuple[LateFee, ...],
    numbers: set[int],
    *,
    paid_at: datetime | None = None,
    waived_at: datetime | None = None,
) -> tuple[LateFee, ...]:
    """``fees`` with the unpaid ones of installments ``numbers`` paid or waived."""
    return tuple(
        attrs.evolve(f, paid_at=paid_at, waived_at=waived_at)
        if f.unpaid and f.installment in numbers
        else f
        for f in fees
    )


def _owed(plan: Plan, number: int) -> Installment:
    installment = _installment(plan, number)
    if plan.status not in RUNNING or not installment.unpaid:
        why = f"installment {number} is {installment.status.value} on a {plan.status.value} plan"
        raise ValidationError([FieldError("number", why, "state")])
    return installment


def refund_on_plan(plan: Plan, amount: Decimal, at: datetime) -> tuple[Plan, Allocation]:
    """A refund of ``amount`` on a running or completed plan, allocated by its terms; an
    installment it cancels takes its unpaid fees with it (waived)."""
    done = allocate_refund(plan.installments, amount, plan.currency, plan.terms.refund_allocation)
    cancelled = {
        i.number
        for before, i in zip(plan.installments, done.installments, strict=True)
        if before.unpaid and not i.unpaid
    }
    after = attrs.evolve(
        plan,
        installments=done.installments,
        late_fees=_settle_fees(plan.late_fees, cancelled, waived_at=at),
    )
    return attrs.evolve(after, status=_settled_status(after)), done


def close(plan: Plan, at: datetime) -> Plan:
    """The order failed or was cancelled: nothing is owed any more."""
    cancelled = tuple(
        attrs.evolve(i, status=InstallmentStatus.CANCELLED, amount=_ZERO) if i.unpaid else i
        for i in plan.installments
    )
    numbers = {i.number for i in plan.installments}
    return attrs.evolve(
        plan,
        status=PlanStatus.CANCELLED,
        installments=cancelled,
        late_fees=_settle_fees(plan.late_fees, numbers, waived_at=at),
    )


def mark_overdue(
    plan: Plan,
    policy: LateFeePolicy | None,
    now: datetime,
    busy: frozenset[int] = frozenset(),
) -> tuple[Plan, list[int], list[LateFee]]:
    """Installments past due (and grace) become overdue, the plan delinquent, and the
    policy's fees are charged; returns the plan, the newly overdue numbers and the fees.

    A ``busy`` installment (a collection of it under way, or held back by a refund that
    waits) is not late yet: it is neither marked nor charged.
    """
    if plan.status not in RUNNING:
        return plan, [], []  # nothing is due before the order is confirmed, or after
    late = [
        i.number
        for i in plan.installments
        if i.status is InstallmentStatus.SCHEDULED and overdue(i, policy, now, busy)
    ]
    installments = tuple(
        attrs.evolve(i, status=InstallmentStatus.OVERDUE) if i.number in late else i
        for i in plan.installments
    )
    after = attrs.evolve(plan, installments=installments)
    fees = fees_due(after, policy, now, busy) if policy is not None else []
    after = attrs.evolve(after, late_fees=after.late_fees + tuple(fees))
    return attrs.evolve(after, status=_settled_status(after)), late, fees


PlanEvents = list[tuple[str, dict[str, Any]]]


def after_payment(
    plan: Plan,
    action: str,
    *,
    at: datetime,
    amount: Decimal | None = None,
    installment: int | None = None,
) -> tuple[Plan, PlanEvents]:
    """What a payment's ``action`` does to its plan, and the plan events it raises:
    confirming or capturing activates it, failing or cancelling closes it, a collected
    installment (``amount``, exactly what it asks for) is paid, a refund (``amount``) is
    allocated by its terms; other actions leave it as it is."""
    if action in ("confirm", "capture"):
        return activate(plan, at), [("plan.activated", {})]
    if action in ("fail", "cancel"):
        return close(plan, at), [("plan.cancelled", {})]
    if action == "installment_paid" and installment is not None:
        paid = pay(plan, installment, at, amount=amount)
        done: PlanEvents = [("plan.completed", {})] if paid.status is PlanStatus.COMPLETED else []
        return paid, done
    if action == "refund" and amount is not None:
        after, allocation = refund_on_plan(plan, amount, at)
        events: PlanEvents = []
        if after.status is not plan.status and after.status in (
            PlanStatus.COMPLETED,
            PlanStatus.CANCELLED,
        ):
            events.append((f"plan.{after.status.value}", {}))
        refund = {
            "reduced": str(allocation.reduced),
            "returned": str(allocation.returned),
            "forgiven": str(allocation.forgiven),
        }
        return after, [("plan.refund_allocated", {"refund": refund}), *events]
    return plan, []
