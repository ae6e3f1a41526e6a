"""The blocking twin of ``paymentorch.adapters.encrypted``."""

from paymentorch.sync.adapters.encrypted.cache import SyncEncryptedCache
from paymentorch.sync.adapters.encrypted.store import SyncEncryptedStore

__all__ = ["SyncEncryptedCache", "SyncEncryptedStore"]
