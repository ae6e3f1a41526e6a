"""Where the dashboard's files live and what the development token endpoint returns."""

from __future__ import annotations

from pathlib import Path

import paymentorch as po
from examples.common.auth import make_token

STATIC = Path(__file__).resolve().parent.parent / "static"


def dev_token(secret: str, role: str | None) -> dict[str, str]:
    """A token for the dashboard in development mode (admin unless ``role`` says user)."""
    chosen = po.Role.USER if role == po.Role.USER.value else po.Role.ADMIN
    return {"token": make_token(secret, "dashboard", [chosen.value], ttl=8 * 3600), "role": chosen}
