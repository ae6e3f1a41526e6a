"""Encryption at rest in front of any store and cache (``open_service(url,
encryption=...)``): the customer id and metadata values are sealed wherever they rest.

- ``store``: ``EncryptedStore``, in front of a store.
- ``cache``: ``EncryptedCache``, in front of a cache.
"""

from paymentorch.adapters.encrypted.cache import EncryptedCache
from paymentorch.adapters.encrypted.store import EncryptedStore

__all__ = ["EncryptedCache", "EncryptedStore"]
