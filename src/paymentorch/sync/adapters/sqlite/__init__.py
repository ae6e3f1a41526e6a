"""The blocking twin of ``paymentorch.adapters.sqlite``."""

from paymentorch.sync.adapters.sqlite.store import SyncSQLitePaymentStore, open_sync_store

__all__ = ["SyncSQLitePaymentStore", "open_sync_store"]
