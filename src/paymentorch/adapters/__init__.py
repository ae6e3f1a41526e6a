"""Backends and the local cache. Drivers are imported lazily by the adapter that needs them.

Each backend module has an ``open_store(url, **options)``; the blocking twin's modules,
generated from these, have ``open_sync_store``.
"""

from __future__ import annotations

from typing import Final

from paymentorch.domain import FieldError, ValidationError

SCHEMES: Final = {
    "memory": "memory",
    "sqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "postgresql": "postgres",
    "postgres": "postgres",
    "postgresql+psycopg": "postgres",
}
"""URL scheme -> backend."""
STORES: Final = {name: f"paymentorch.adapters.{name}" for name in set(SCHEMES.values())}
"""Backend -> the module of its store."""
SYNC_STORES: Final = {name: f"paymentorch.sync.adapters.{name}" for name in set(SCHEMES.values())}
"""Backend -> the module of its blocking twin's store."""


def backend_of(url: object) -> str:
    """The backend a URL names (``memory``, ``sqlite``, ``postgres``)."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            [FieldError("url", "must be a URL such as 'sqlite:///payments.db'", "url")]
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise ValidationError(
            [FieldError("url", f"unknown scheme {scheme!r}; use one of {known}", "scheme")]
        )
    return SCHEMES[scheme]
