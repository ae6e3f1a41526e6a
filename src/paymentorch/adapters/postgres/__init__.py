"""The PostgreSQL store: psycopg 3 with psycopg_pool, one round trip per change.

- ``store``: ``PostgresPaymentStore``, its writes and reads, and ``open_store``.
- ``changes``: writing a change: the guarded statement and what it cannot carry.
- ``outbox``: its outbox.
- ``pool``: opening its pool, and running each call on one of its connections.
- ``connection``: settings, the limits on each call, and the one seam where the
  driver's errors become paymentorch's.
- ``statements``: its SQL, and values to and from rows.

Importing it without psycopg raises ``MissingDriver``, naming the extra to install.
"""

from paymentorch.adapters._require import driver

driver("psycopg", "postgres")
driver("psycopg_pool", "postgres")

from paymentorch.adapters.postgres.store import (  # noqa: E402 - after the check that names the extra
    PostgresPaymentStore,
    open_store,
)

__all__ = ["PostgresPaymentStore", "open_store"]
