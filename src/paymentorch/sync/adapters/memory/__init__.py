"""The blocking twin of ``paymentorch.adapters.memory``."""

from paymentorch.sync.adapters.memory.store import SyncInMemoryPaymentStore, open_sync_store

__all__ = ["SyncInMemoryPaymentStore", "open_sync_store"]
