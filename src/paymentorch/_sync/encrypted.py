"""Deprecated alias of ``paymentorch.sync.adapters.encrypted``."""

from paymentorch.sync.adapters.encrypted import SyncEncryptedCache, SyncEncryptedStore

__all__ = ["SyncEncryptedCache", "SyncEncryptedStore"]
