"""Where the dashboard's files live and what the development token endpoint returns."""

from __future__ import annotations

from pathlib import Path

import paymentorch as po
from examples.common.auth import make_token
from paymentorch.domain import FieldError

STATIC = Path(__file__).resolve().parent.parent / "static"


def dev_token(secret: str, role: str | None, customer: str | None = None) -> dict[str, str]:
    """A token for the dashboard in development mode: admin, unless ``role`` names another
    (a PaymentUser's names its ``customer``).

    Raises:
        ValidationError: ``role`` is not a paymentorch role, or a PaymentUser has no
            valid customer.
    """
    roles = {r.value: r for r in po.Role}
    if role is not None and role not in roles:
        raise po.ValidationError(
            [FieldError("role", f"must be one of {', '.join(sorted(roles))}", "choice")]
        )
    chosen = roles.get(role or "", po.Role.ADMIN)
    if chosen is po.Role.USER:
        _, errors = po.ValidationPolicy().check_field("customer_id", customer)
        if customer is None:
            errors = [FieldError("customer", "is required for a PaymentUser", "required")]
        if errors:
            raise po.ValidationError([FieldError("customer", e.message, e.code) for e in errors])
    else:
        customer = None
    token = make_token(secret, "dashboard", [chosen.value], customer=customer, ttl=8 * 3600)
    return {"token": token, "role": chosen}
