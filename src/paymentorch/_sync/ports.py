"""Deprecated alias of ``paymentorch.sync.ports``."""

from paymentorch.sync.ports import (
    SyncAuditLog,
    SyncCache,
    SyncOutbox,
    SyncPaymentProcessor,
    SyncPaymentStore,
)

__all__ = ["SyncAuditLog", "SyncCache", "SyncOutbox", "SyncPaymentProcessor", "SyncPaymentStore"]
