"""Deprecated alias of ``paymentorch.sync.adapters.cache``."""

from paymentorch.sync.adapters.cache import SyncLocalCache

__all__ = ["SyncLocalCache"]
