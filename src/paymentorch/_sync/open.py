"""Deprecated alias of ``paymentorch.sync._open`` (public as ``paymentorch.sync``)."""

from paymentorch.sync._open import open_sync_service, open_sync_store

__all__ = ["open_sync_service", "open_sync_store"]
