"""What may be done next to a payment, for a host's buttons and links."""

from __future__ import annotations

from collections.abc import Iterable

from paymentorch.domain.operations import Operation, OperationKind, OperationStatus
from paymentorch.domain.payment import TRANSITIONS, Payment, PaymentStatus

# The order a host lists them in: the payment's life, then money back, then its plan.
ACTIONS = (
    "authorize",
    "confirm",
    "capture",
    "fail",
    "cancel",
    "refund",
    "pay_installment",
    "waive_installment",
)
IN_FLIGHT = frozenset(
    {OperationStatus.PENDING, OperationStatus.UNKNOWN, OperationStatus.NEEDS_ATTENTION}
)


def allowed_actions(payment: Payment, *, operations: Iterable[Operation] = ()) -> list[str]:
    """The actions ``payment``'s status and money allow now, in ``ACTIONS`` order.

    ``operations`` are the payment's own (``service.operations(id)``). While one of them
    is in flight (pending, unknown or waiting for a person) no status change is offered:
    the processor's answer decides it. A refund needs something left to refund; an
    installment is paid or waived by hand only on a Confirmed payment with a plan and
    no collection under way. Roles are the host's to apply.
    """
    in_flight = [op for op in operations if op.status in IN_FLIGHT]
    allowed = [
        action
        for action, (sources, _target) in TRANSITIONS.items()
        if payment.status in sources and not in_flight
    ]
    confirmed = payment.status is PaymentStatus.CONFIRMED
    if confirmed and payment.refundable > 0:
        allowed.append("refund")
    collecting = any(op.kind is OperationKind.INSTALLMENT for op in in_flight)
    if confirmed and payment.has_plan and not collecting:
        allowed += ["pay_installment", "waive_installment"]
    return sorted(allowed, key=lambda a: ACTIONS.index(a) if a in ACTIONS else len(ACTIONS))
