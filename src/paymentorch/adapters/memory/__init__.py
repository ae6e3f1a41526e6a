"""The in-memory store: the fake that service tests use, held to the same contract as SQL.

- ``store``: ``InMemoryPaymentStore``, its writes and reads, and ``open_store``.
- ``outbox``: its outbox, and the lock every call takes.
"""

from paymentorch.adapters.memory.store import InMemoryPaymentStore, open_store

__all__ = ["InMemoryPaymentStore", "open_store"]
