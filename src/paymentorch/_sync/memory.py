"""Deprecated alias of ``paymentorch.sync.adapters.memory``."""

from paymentorch.sync.adapters.memory import SyncInMemoryPaymentStore, open_sync_store

__all__ = ["SyncInMemoryPaymentStore", "open_sync_store"]
