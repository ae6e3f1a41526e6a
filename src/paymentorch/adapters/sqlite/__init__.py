"""The SQLite store: the stdlib ``sqlite3``, each operation one transaction in one call.

- ``store``: ``SQLitePaymentStore``, its writes and reads, and ``open_store``.
- ``outbox``: its outbox.
- ``connection``: the connection under it, and where its work runs (the event loop or
  the connection's thread; the calling thread in the blocking twin).
- ``statements``: its SQL, and values to and from rows.
"""

from paymentorch.adapters.sqlite.store import SQLitePaymentStore, open_store

__all__ = ["SQLitePaymentStore", "open_store"]
