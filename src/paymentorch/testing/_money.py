"""Money conservation: a plan, and the books, checked against what the simulated
processors moved."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from paymentorch.domain import Operation, OperationKind, OperationStatus, Payment
from paymentorch.domain.integrity import IntegrityReport
from paymentorch.domain.ledger import DEFAULT_MERCHANT, Account, AccountKind, balances, standing
from paymentorch.domain.plans import InstallmentStatus, Plan
from paymentorch.testing.simulated import Movement

if TYPE_CHECKING:
    from paymentorch.service import PaymentService

COLLECTIONS = frozenset({OperationKind.INSTALLMENT, OperationKind.CAPTURE})
"""Operations that take an installment from the customer (a plan's capture takes the first)."""
SIGNED = frozenset({*COLLECTIONS, OperationKind.CHARGE, OperationKind.REFUND})
"""Operations whose movement carries their amount (an authorization or a void moves none)."""
UNSETTLED = frozenset(
    {OperationStatus.PENDING, OperationStatus.UNKNOWN, OperationStatus.NEEDS_ATTENTION}
)
"""An operation whose money, if the processor moved any, the plan shows once it settles."""
_ZERO = Decimal(0)


def all_movements(processors: Iterable[object]) -> dict[UUID, Movement]:
    """Every movement of every simulated processor among ``processors``."""
    found: dict[UUID, Movement] = {}
    for processor in processors:
        movements = getattr(processor, "movements", None)
        if movements is not None:
            found.update(movements())
    return found


def plan_money_problems(
    plan: Plan, operations: Sequence[Operation], movements: Mapping[UUID, Movement]
) -> list[str]:
    """What does not add up on ``plan``, whose payment's money moves through processors
    from installment 1 on (an automatic or manual capture), against ``movements``.

    - the processor moved exactly what the succeeded operations say, and nothing for
      a declined one (what moved for one still pending or unknown is in transit, and
      one that needs attention is a person's to settle: both are left out);
    - an installment is paid for exactly what was collected for it: its amount and the
      fees paid with it;
    - no fee on an installment whose collection was under way when it was charged and
      then succeeded;
    - what the processors moved for the plan is what it shows paid (installments and
      fees, less those paid by hand) minus what went back to the customer.
    """
    mine = [m for m in movements.values() if m.payment_id == plan.payment_id]
    collected, problems = _collections(operations)
    by_hand, wrong = _installments(plan, collected)
    problems += _ledger(operations, mine) + wrong + _fees_under_way(plan, operations)
    unsettled = {op.id for op in operations if op.status in UNSETTLED}
    moved = sum((m.amount for m in mine if m.operation_id not in unsettled), _ZERO)
    paid = sum((i.amount for i in plan.installments if i.status is InstallmentStatus.PAID), _ZERO)
    fees = sum((f.amount for f in plan.late_fees if f.paid_at), _ZERO)
    returned = sum((i.refunded_amount for i in plan.installments), _ZERO)
    if moved != paid + fees - by_hand - returned:
        problems.append(
            f"the processors moved {moved}; the plan shows {paid} in installments and"
            f" {fees} in fees paid ({by_hand} of it by hand) and {returned} returned"
        )
    return problems


def _ledger(operations: Sequence[Operation], movements: Sequence[Movement]) -> list[str]:
    """Each movement against its operation, and each succeeded operation against its
    movement."""
    problems = []
    by_id = {op.id: op for op in operations}
    for movement in movements:
        op = by_id.get(movement.operation_id)
        if op is None:
            problems.append(f"{movement.operation_id}: {movement.amount} moved for no operation")
        elif op.status in UNSETTLED:
            continue  # in transit (the answer is not recorded yet), or a person's to settle
        elif op.status is not OperationStatus.SUCCEEDED:
            problems.append(f"{op.id}: {movement.amount} moved, but it is {op.status}")
        elif abs(movement.amount) != op.moves and op.kind in SIGNED:
            problems.append(f"{op.id}: {movement.amount} moved, the operation says {op.moves}")
    moved = {m.operation_id for m in movements}
    problems += [
        f"{op.id}: succeeded, but the processor moved nothing"
        for op in operations
        if op.status is OperationStatus.SUCCEEDED and op.processor and op.id not in moved
    ]
    return problems


def _collections(operations: Sequence[Operation]) -> tuple[dict[int, Operation], list[str]]:
    """The succeeded collection of each installment; a second one is a problem."""
    collected: dict[int, Operation] = {}
    problems = []
    for op in operations:
        if op.kind in COLLECTIONS and op.status is OperationStatus.SUCCEEDED:
            number = op.installment or 1
            if number in collected:
                problems.append(f"installment {number} collected twice")
            collected[number] = op
    return collected, problems


def _installments(plan: Plan, collected: Mapping[int, Operation]) -> tuple[Decimal, list[str]]:
    """What was paid by hand, and each collected installment against what it was paid."""
    by_hand, problems = _ZERO, []
    for installment in plan.installments:
        number = installment.number
        fees = sum((f.amount for f in plan.late_fees if f.installment == number and f.paid_at),
                   _ZERO)  # fmt: skip
        op = collected.get(number)
        if installment.status is InstallmentStatus.PAID and op is None:
            by_hand += installment.amount + fees
        elif installment.status is InstallmentStatus.PAID and op is not None:
            if op.amount != installment.amount + fees:
                problems.append(
                    f"installment {number} paid as {installment.amount} + {fees} in fees,"
                    f" but {op.amount} was collected"
                )
        elif op is not None:
            problems.append(f"installment {number} collected, but it is {installment.status}")
    return by_hand, problems


def _fees_under_way(plan: Plan, operations: Sequence[Operation]) -> list[str]:
    """Fees charged on an installment while its collection, which then succeeded, was
    under way."""
    return [
        f"a fee on installment {fee.installment} while its collection {op.id} was under way"
        for fee in plan.late_fees
        for op in operations
        if op.kind is OperationKind.INSTALLMENT
        and op.installment == fee.installment
        and op.status is OperationStatus.SUCCEEDED
        and op.created_at <= fee.charged_at < op.updated_at
    ]


def books_problems(
    payments: Sequence[Payment],
    *,
    plans: Mapping[UUID, Plan | None],
    operations: Sequence[Operation],
    movements: Mapping[UUID, Movement],
    balance: Callable[[Account], Decimal],
    report: IntegrityReport,
) -> list[str]:
    """What does not agree between the books and the business, ``payments`` being every
    payment in the store (with their ``plans`` and ``operations``), ``balance`` reading an
    account's and ``report`` what ``verify`` found:

    - ``verify`` finds nothing;
    - each customer's receivable is what its running plans still owe (installments and
      fees), and the merchant's payable is captured less refunded over all payments;
    - each processor's clearing account holds exactly what it really moved for the
      operations that settled (the money of one still in transit is not booked yet).
    """
    problems = [f"verify: {p.check} {p.payment_id}: {p.detail}" for p in report.problems]
    wanted: dict[Account, Decimal] = {}

    def want(account: Account, amount: Decimal) -> None:
        wanted[account] = wanted.get(account, _ZERO) + amount

    for payment in payments:
        figures = standing(payment, plans.get(payment.id))
        currency = payment.currency
        want(Account(AccountKind.RECEIVABLE, payment.customer_id, currency), figures.receivable)
        want(Account(AccountKind.PAYABLE, DEFAULT_MERCHANT, currency), -figures.payable)
    settled = {
        op.id: op.processor
        for op in operations
        if op.status is OperationStatus.SUCCEEDED and op.processor
    }
    for movement in movements.values():
        if movement.operation_id in settled:
            processor = settled[movement.operation_id] or ""
            want(Account(AccountKind.CLEARING, processor, movement.currency), movement.amount)
    for account, amount in sorted(wanted.items(), key=lambda item: str(item[0])):
        if (found := balance(account)) != amount:
            problems.append(f"{account.kind} {account.owner} {account.currency}: the books"
                            f" say {found}, the business {amount}")  # fmt: skip
    return problems


async def service_books_problems(
    service: PaymentService, payment_ids: Sequence[UUID], processors: Iterable[object] = ()
) -> list[str]:
    """``books_problems`` of every payment in ``service``'s store (``payment_ids``), read
    through the service: each account any of their journals posts to is read once."""
    payments = [await service.get_payment(pid) for pid in payment_ids]
    plans = {p.id: await service.plan(p.id) if p.has_plan else None for p in payments}
    operations = [op for p in payments for op in await service.operations(p.id)]
    figures: dict[Account, Decimal] = {}
    for payment in payments:
        for account in balances(await service.journal(payment.id)):
            figures.setdefault(account, await service.balance(account))
    report = await service.verify()
    problems = [] if report.checked == len(payments) else [f"verify checked {report.checked}"]
    return problems + books_problems(
        payments, plans=plans, operations=operations, movements=all_movements(processors),
        balance=lambda account: figures.get(account, _ZERO), report=report,
    )  # fmt: skip
