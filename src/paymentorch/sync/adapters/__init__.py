"""The blocking twin's stores and caches, side by side, as in ``paymentorch.adapters``.

Each is imported when first used, so no driver is imported before then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paymentorch.adapters.redis import SyncRedisCache
    from paymentorch.sync._open import open_sync_store
    from paymentorch.sync.adapters.cache import SyncLocalCache
    from paymentorch.sync.adapters.encrypted import SyncEncryptedCache, SyncEncryptedStore
    from paymentorch.sync.adapters.memory import SyncInMemoryPaymentStore
    from paymentorch.sync.adapters.postgres import SyncPostgresPaymentStore
    from paymentorch.sync.adapters.sqlite import SyncSQLitePaymentStore

_HOMES = {
    "SyncEncryptedCache": "paymentorch.sync.adapters.encrypted",
    "SyncEncryptedStore": "paymentorch.sync.adapters.encrypted",
    "SyncInMemoryPaymentStore": "paymentorch.sync.adapters.memory",
    "SyncLocalCache": "paymentorch.sync.adapters.cache",
    "SyncPostgresPaymentStore": "paymentorch.sync.adapters.postgres",
    "SyncRedisCache": "paymentorch.adapters.redis",
    "SyncSQLitePaymentStore": "paymentorch.sync.adapters.sqlite",
    "open_sync_store": "paymentorch.sync._open",
}

__all__ = [
    "SyncEncryptedCache",
    "SyncEncryptedStore",
    "SyncInMemoryPaymentStore",
    "SyncLocalCache",
    "SyncPostgresPaymentStore",
    "SyncRedisCache",
    "SyncSQLitePaymentStore",
    "open_sync_store",
]


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
