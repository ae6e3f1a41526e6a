"""Deprecated alias of ``paymentorch.sync.service``."""

from paymentorch.sync.service import SyncPaymentService

__all__ = ["SyncPaymentService"]
