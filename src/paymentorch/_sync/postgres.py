"""Deprecated alias of ``paymentorch.sync.adapters.postgres``."""

from paymentorch.sync.adapters.postgres import SyncPostgresPaymentStore, open_sync_store

__all__ = ["SyncPostgresPaymentStore", "open_sync_store"]
