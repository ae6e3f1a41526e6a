"""THE table of actions: what each does to a payment, who may ask for it, what it records.

Every change a payment goes through is one of these. The state machine (``transition``),
the role policy, the audit entry's action, the event's type, the stores' status guards
and the list of what a person may do next (``allowed_actions``) all read this table; a
new action is an entry here and a handler in ``paymentorch.usecases``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import attrs

from paymentorch.domain.operations import Operation, OperationKind, OperationStatus
from paymentorch.domain.plans.model import ACCEPTS_PAYMENT, RUNNING, Plan
from paymentorch.domain.status import PaymentStatus

if TYPE_CHECKING:  # the payment module reads this table
    from paymentorch.domain.payment import Payment

PENDING, AUTHORIZED, CONFIRMED = (
    PaymentStatus.PENDING,
    PaymentStatus.AUTHORIZED,
    PaymentStatus.CONFIRMED,
)
FAILED, CANCELLED = PaymentStatus.FAILED, PaymentStatus.CANCELLED


class Permission(enum.StrEnum):
    """Which of the role policy's sets an action needs (``RolePolicy.create`` or
    ``RolePolicy.change``)."""

    CREATE = "create"
    CHANGE = "change"


@attrs.frozen
class Action:
    """One action.

    Attributes:
        name: How the code and ``Change`` name it.
        sources: The statuses it starts from (none for the creation).
        target: The status it leads to; None when the status stays (or, for a refund,
            when the amounts decide: Refunded once everything captured is).
        audit: The audit entry's ``action``.
        event: The outbox event's ``type``.
        permission: The role set it needs, when a person asks for it.
        plan: What it does to the payment's plan, if it has one: ``activate``,
            ``close``, ``pay``, ``waive``, ``allocate`` (a refund), ``charge_off`` or
            ``resume`` (its automatic collection).
        ledger: The kind of journal entry it posts when money moves.
        asked_as: The name a person asks for it by (``allowed_actions``), when a person
            may; None for what only the library does (queued, declined, overdue...).
    """

    name: str
    sources: frozenset[PaymentStatus]
    target: PaymentStatus | None
    audit: str
    event: str
    permission: Permission = Permission.CHANGE
    plan: str | None = None
    ledger: str | None = None
    asked_as: str | None = None


def _actions(*actions: Action) -> Mapping[str, Action]:
    return MappingProxyType({action.name: action for action in actions})


_LIVE = frozenset({PENDING, AUTHORIZED})
ACTIONS: Final = _actions(
    # The payment's life.
    Action("created", frozenset(), PENDING, "created", "payment.created", Permission.CREATE,
           asked_as="create"),
    Action("authorize", frozenset({PENDING}), AUTHORIZED, "authorized", "payment.authorized",
           asked_as="authorize"),
    Action("confirm", frozenset({PENDING}), CONFIRMED, "confirmed", "payment.confirmed",
           plan="activate", ledger="capture", asked_as="confirm"),
    Action("capture", frozenset({AUTHORIZED}), CONFIRMED, "captured", "payment.confirmed",
           plan="activate", ledger="capture", asked_as="capture"),
    Action("fail", _LIVE, FAILED, "failed", "payment.failed", plan="close", asked_as="fail"),
    Action("cancel", _LIVE, CANCELLED, "cancelled", "payment.cancelled", plan="close",
           asked_as="cancel"),
    # Money back.
    Action("refund", frozenset({CONFIRMED}), None, "refunded", "payment.refunded",
           plan="allocate", ledger="refund", asked_as="refund"),
    # Through a processor: queued, then settled by its answer.
    Action("capture_queued", frozenset({AUTHORIZED}), None, "capture_queued",
           "payment.capture_queued"),
    Action("cancel_queued", frozenset({AUTHORIZED}), None, "cancel_queued",
           "payment.cancel_queued"),
    Action("refund_queued", frozenset({CONFIRMED}), None, "refund_queued",
           "payment.refund_queued"),
    Action("capture_declined", frozenset({AUTHORIZED}), None, "capture_declined",
           "payment.capture_declined"),
    Action("cancel_declined", frozenset({AUTHORIZED}), None, "cancel_declined",
           "payment.cancel_declined"),
    Action("refund_declined", frozenset({CONFIRMED}), None, "refund_declined",
           "payment.refund_declined"),
    # The plan's installments.
    Action("installment_paid", frozenset({CONFIRMED}), None, "installment_paid",
           "plan.installment_paid", plan="pay", ledger="installment",
           asked_as="pay_installment"),
    Action("waived", frozenset({CONFIRMED}), None, "waived", "plan.installment_waived",
           plan="waive", ledger="waiver", asked_as="waive_installment"),
    Action("charge_off", frozenset({CONFIRMED}), None, "charged_off", "plan.charged_off",
           plan="charge_off", ledger="write_off", asked_as="charge_off"),
    Action("recovered", frozenset({CONFIRMED}), None, "recovered", "plan.installment_paid",
           plan="pay", ledger="recovery"),
    Action("collecting", frozenset({CONFIRMED}), None, "collecting",
           "plan.installment_collecting"),
    Action("collection_failed", frozenset({CONFIRMED}), None, "collect_declined",
           "plan.collection_failed"),
    Action("collection_resumed", frozenset({CONFIRMED}), None, "collect_resumed",
           "plan.collection_resumed", plan="resume", asked_as="resume_collection"),
    Action("reminded", frozenset({CONFIRMED}), None, "reminded",
           "plan.installment_due_soon"),
    Action("installment_late", frozenset({CONFIRMED}), None, "installment_late",
           "plan.installment_overdue", ledger="late_fee"),
    Action("late_fee_charged", frozenset({CONFIRMED}), None, "late_fee_charged",
           "plan.late_fee_charged", ledger="late_fee"),
)  # fmt: skip
"""Every action, by name."""

ASKED: Final = {a.asked_as: a for a in ACTIONS.values() if a.asked_as is not None}
"""The actions a person may ask for, by the name they ask by, in the order a host lists
them (the payment's life, then money back, then its plan)."""
TRANSITIONS: Final = MappingProxyType(
    {a.name: (a.sources, a.target) for a in ACTIONS.values() if a.target is not None and a.sources}
)
"""The status transitions: action -> (the statuses it starts from, the status it reaches)."""
IN_FLIGHT: Final = frozenset(
    {OperationStatus.PENDING, OperationStatus.UNKNOWN, OperationStatus.NEEDS_ATTENTION}
)


def permission_for(asked: str) -> Permission:
    """The role set a request needs: the table's, or ``change`` for what the table does
    not list (operator tools: resolving an operation, bulk confirmation...)."""
    found = ASKED.get(asked)
    return Permission.CHANGE if found is None else found.permission


def action(name: str) -> Action:
    """The action named ``name``.

    Raises:
        KeyError: no such action (a bug: every change names one of the table's).
    """
    return ACTIONS[name]


def allowed_actions(
    payment: Payment, *, operations: Iterable[Operation] = (), plan: Plan | None = None
) -> list[str]:
    """What a person may ask for next on ``payment``, by the name they ask by, in the
    order of the table.

    ``operations`` are the payment's own (``service.operations(id)``), ``plan`` its plan
    (``service.plan(id)``), if it has one. While an operation is in flight (pending,
    unknown or waiting for a person) no status change is offered: the processor's answer
    decides it. A refund needs something left to refund. An installment is paid or
    waived by hand only on a Confirmed payment with a plan and no collection under way
    (given the plan: one with an unpaid installment, running, or charged off for a
    payment, which is then a recovery). A charge-off needs the plan: running, with no
    operation of the payment in flight and no refund under way; resuming collection,
    a running plan whose automatic collection stopped. Roles are the host's to apply.
    """
    in_flight = [op for op in operations if op.status in IN_FLIGHT]
    collecting = any(op.kind is OperationKind.INSTALLMENT for op in in_flight)
    allowed = []
    for name, found in ASKED.items():
        if payment.status not in found.sources:
            continue
        if found.target is not None and in_flight:
            continue
        if found.plan == "allocate" and payment.refundable <= 0:
            continue
        if found.plan in _BY_HAND and not _by_hand(
            found.plan, payment, plan, busy=bool(in_flight), collecting=collecting
        ):
            continue
        allowed.append(name)
    return allowed


_BY_HAND = frozenset({"pay", "waive", "charge_off", "resume"})
"""What a person does to a plan by hand."""


def _by_hand(
    what: str | None, payment: Payment, plan: Plan | None, *, busy: bool, collecting: bool
) -> bool:
    """Whether ``what`` (a ``_BY_HAND`` plan effect) may be asked for on ``payment``."""
    if payment.status is not CONFIRMED or not payment.has_plan:
        return False
    running = plan is not None and plan.status in RUNNING
    if what == "charge_off":
        return running and not busy and not payment.pending_refunds
    if what == "resume":
        return running and plan is not None and plan.collection_stopped
    if collecting:
        return False
    if plan is None:  # without the plan, offered on any Confirmed plan payment
        return True
    statuses = ACCEPTS_PAYMENT if what == "pay" else RUNNING
    return plan.status in statuses and any(i.unpaid for i in plan.installments)
