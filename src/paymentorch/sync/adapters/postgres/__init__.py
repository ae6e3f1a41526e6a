"""The blocking twin of ``paymentorch.adapters.postgres``.

Importing it without psycopg raises ``MissingDriver``, naming the extra to install.
"""

from paymentorch.adapters._require import driver

driver("psycopg", "postgres")
driver("psycopg_pool", "postgres")

from paymentorch.sync.adapters.postgres.store import (  # noqa: E402 - after the check that names the extra
    SyncPostgresPaymentStore,
    open_sync_store,
)

__all__ = ["SyncPostgresPaymentStore", "open_sync_store"]
