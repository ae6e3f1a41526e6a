"""Who may see and do what, on top of the library's role policy.

A PaymentAdmin sees every payment and may change them. A PaymentUser acts for the one
customer its token names: it lists, reads and creates that customer's payments and
nothing else. Another customer's payment is "not found" (its existence is not
revealed); every change beyond creation needs PaymentAdmin.
"""

from __future__ import annotations

from collections.abc import Iterable

import paymentorch as po
from examples.common.auth import Caller


def require_reader(caller: Caller) -> None:
    """Reads need PaymentAdmin, or PaymentUser with a customer to read for."""
    if caller.admin:
        return
    if po.Role.USER not in caller.actor.roles:
        raise po.PermissionDenied(caller.actor.id, "read payments", "PaymentUser or PaymentAdmin")
    if caller.customer is None:
        raise po.PermissionDenied(
            caller.actor.id, "read payments", "a PaymentUser token with a customer claim"
        )


def require_admin(caller: Caller, action: str) -> None:
    """Everything beyond reading one's own payments and creating them needs PaymentAdmin."""
    if not caller.admin:
        raise po.PermissionDenied(caller.actor.id, action, "PaymentAdmin")


def customer_filter(caller: Caller, asked: str | None) -> str | None:
    """The customer a listing is limited to: the caller's own, whatever the query says."""
    return asked if caller.admin else caller.customer


def check_owner(caller: Caller, payment: po.Payment) -> po.Payment:
    """``payment`` if the caller may see it; another customer's is not found."""
    if not caller.admin and payment.customer_id != caller.customer:
        raise po.PaymentNotFound(payment.id)
    return payment


def check_creation(caller: Caller, customer_id: str) -> None:
    """A PaymentUser creates payments only for its own customer."""
    require_reader(caller)
    if not caller.admin and customer_id != caller.customer:
        raise po.PermissionDenied(
            caller.actor.id, "create payments for another customer", "PaymentAdmin"
        )


def next_actions(
    caller: Caller,
    payment: po.Payment,
    operations: Iterable[po.Operation],
    plan: po.Plan | None = None,
) -> list[str]:
    """What the caller may do next to ``payment`` (with its ``plan``, if it has one):
    nothing, unless an admin."""
    if not caller.admin:
        return []
    return po.allowed_actions(payment, operations=operations, plan=plan)


def plan_matters(payment: po.Payment) -> bool:
    """Whether what may be done next to ``payment`` depends on its plan (read it then)."""
    return payment.has_plan and payment.status is po.PaymentStatus.CONFIRMED
