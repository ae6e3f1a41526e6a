"""The stores and caches, side by side: one package per backend (``memory``, ``sqlite``,
``postgres``, ``redis``, ``encrypted``), and the process-local cache (``cache``).

Each class is imported when first used (PEP 562), so ``import paymentorch.adapters``
imports no driver. psycopg comes with the ``postgres`` package, redis-py and
cryptography when a ``RedisCache`` or a ``FieldEncryption`` is built; a missing one
raises ``MissingDriver`` naming the extra to install. Each store package has an
``open_store(url, **options)``; the blocking twin's (``paymentorch.sync.adapters``),
generated from these, have ``open_sync_store``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from paymentorch.domain import FieldError, ValidationError

if TYPE_CHECKING:
    from paymentorch._open import open_store
    from paymentorch.adapters.cache import LocalCache
    from paymentorch.adapters.encrypted import EncryptedCache, EncryptedStore
    from paymentorch.adapters.memory import InMemoryPaymentStore
    from paymentorch.adapters.postgres import PostgresPaymentStore
    from paymentorch.adapters.redis import RedisCache
    from paymentorch.adapters.sqlite import SQLitePaymentStore

_HOMES: Final = {
    "EncryptedCache": "paymentorch.adapters.encrypted",
    "EncryptedStore": "paymentorch.adapters.encrypted",
    "InMemoryPaymentStore": "paymentorch.adapters.memory",
    "LocalCache": "paymentorch.adapters.cache",
    "PostgresPaymentStore": "paymentorch.adapters.postgres",
    "RedisCache": "paymentorch.adapters.redis",
    "SQLitePaymentStore": "paymentorch.adapters.sqlite",
    "open_store": "paymentorch._open",
}

__all__ = [
    "EncryptedCache",
    "EncryptedStore",
    "InMemoryPaymentStore",
    "LocalCache",
    "PostgresPaymentStore",
    "RedisCache",
    "SQLitePaymentStore",
    "backend_of",
    "open_store",
]

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


def __getattr__(name: str) -> Any:
    """Import the module of ``name`` on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
