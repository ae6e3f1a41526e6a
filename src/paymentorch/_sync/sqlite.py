"""Deprecated alias of ``paymentorch.sync.adapters.sqlite``."""

from paymentorch.sync.adapters.sqlite import SyncSQLitePaymentStore, open_sync_store

__all__ = ["SyncSQLitePaymentStore", "open_sync_store"]
