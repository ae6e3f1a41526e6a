"""Where the dashboard's files live and what the development token endpoint returns."""

from __future__ import annotations

from pathlib import Path

import paymentorch as po
from examples.common.auth import make_token
from paymentorch.domain import FieldError

STATIC = Path(__file__).resolve().parent.parent / "static"


def dev_token(secret: str, role: str | None) -> dict[str, str]:
    """A token for the dashboard in development mode: admin, unless ``role`` names another.

    Raises:
        ValidationError: ``role`` is not a paymentorch role.
    """
    roles = {r.value: r for r in po.Role}
    if role is not None and role not in roles:
        raise po.ValidationError(
            [FieldError("role", f"must be one of {', '.join(sorted(roles))}", "choice")]
        )
    chosen = roles.get(role or "", po.Role.ADMIN)
    return {"token": make_token(secret, "dashboard", [chosen.value], ttl=8 * 3600), "role": chosen}
