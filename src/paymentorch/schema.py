"""The tables, in SQLAlchemy Core, for ``paymentorch.schema.metadata`` in a host's Alembic.

Money is exact everywhere: ``NUMERIC`` on PostgreSQL, decimal text on SQLite (never REAL).
Times are ``timestamptz`` on PostgreSQL and fixed-width ISO 8601 UTC text on SQLite, so
that text order is time order. Ids are ``uuid`` on PostgreSQL and 32 hex digits on SQLite.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

PREFIX: Final = "paymentorch_"
VERSION_TABLE: Final = "paymentorch_alembic_version"

metadata = sa.MetaData()


def _uuid() -> sa.types.TypeEngine[Any]:
    return sa.Uuid().with_variant(sa.String(32), "sqlite")


def _time() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return (
        sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
    )


def _money() -> sa.types.TypeEngine[Any]:
    return sa.Numeric().with_variant(sa.String(40), "sqlite")


def _serial() -> sa.types.TypeEngine[Any]:
    # SQLite only auto-numbers an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


payments = sa.Table(
    "paymentorch_payments",
    metadata,
    sa.Column("id", _uuid(), primary_key=True),
    sa.Column("customer_id", sa.String(100), nullable=False),
    sa.Column("amount", _money(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", _time(), nullable=False),
    sa.Column("updated_at", _time(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("failure_reason", sa.String(500)),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("metadata", _json(), nullable=False),
    # Keys are unique per caller: the id of the actor who created the payment.
    sa.Column("idempotency_scope", sa.String(200)),
    sa.Column("captured_amount", _money(), nullable=False, server_default="0"),
    sa.Column("refunded_amount", _money(), nullable=False, server_default="0"),
    sa.Column("pending_refunds", _money(), nullable=False, server_default="0"),
    sa.Column("has_plan", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.CheckConstraint(
        "status IN ('Pending', 'Authorized', 'Confirmed', 'Failed', 'Cancelled', 'Refunded')",
        name="paymentorch_payments_status",
    ),
    sa.Index(
        "paymentorch_payments_idempotency", "idempotency_scope", "idempotency_key", unique=True
    ),
    sa.Index("paymentorch_payments_created", "created_at", "id"),
    sa.Index("paymentorch_payments_status_created", "status", "created_at", "id"),
    sa.Index("paymentorch_payments_customer_created", "customer_id", "created_at", "id"),
)

audit_entries = sa.Table(
    "paymentorch_audit_entries",
    metadata,
    sa.Column("seq", _serial(), primary_key=True, autoincrement=True),
    sa.Column("payment_id", _uuid(), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("at", _time(), nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("correlation_id", sa.String(200)),
    sa.Column("event_id", _uuid()),
    sa.Index("paymentorch_audit_entries_payment", "payment_id", "seq"),
)

outbox = sa.Table(
    "paymentorch_outbox",
    metadata,
    sa.Column("seq", _serial(), primary_key=True, autoincrement=True),
    sa.Column("event_id", _uuid(), nullable=False, unique=True),
    sa.Column("payment_id", _uuid(), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("occurred_at", _time(), nullable=False),
    sa.Column("payload", _json(), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("correlation_id", sa.String(200)),
    sa.Column("state", sa.String(10), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("available_at", _time()),
    sa.Column("lease_until", _time()),
    sa.Column("last_error", sa.Text()),
    sa.Column("operation", _json()),
    sa.CheckConstraint("state IN ('pending', 'parked')", name="paymentorch_outbox_state"),
    sa.Index("paymentorch_outbox_payment", "payment_id", "seq"),
    sa.Index("paymentorch_outbox_state", "state", "seq"),
    sa.Index(  # the claim's "no earlier pending event of this payment", from pending rows
        "paymentorch_outbox_pending_payment",
        "payment_id",
        "seq",
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    ),
)


operations = sa.Table(
    "paymentorch_operations",
    metadata,
    sa.Column("id", _uuid(), primary_key=True),
    sa.Column("payment_id", _uuid(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount", _money(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("processor", sa.String(100)),
    sa.Column("reference", sa.String(200)),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("reason", sa.String(500)),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("idempotency_scope", sa.String(200)),
    sa.Column("error", sa.Text()),
    sa.Column("created_at", _time(), nullable=False),
    sa.Column("updated_at", _time(), nullable=False),
    sa.Column("due_at", _time()),
    sa.Column("lookups", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("lease_until", _time()),
    sa.Column("installment", sa.Integer()),
    sa.Column("processor_amount", _money()),
    sa.Index("paymentorch_operations_payment", "payment_id", "created_at", "id"),
    sa.Index("paymentorch_operations_due", "status", "due_at"),
    sa.Index(
        "paymentorch_operations_key",
        "payment_id",
        "idempotency_scope",
        "idempotency_key",
        unique=True,
    ),
    sa.Index("paymentorch_operations_reference", "processor", "reference"),
)

inbox = sa.Table(
    "paymentorch_inbox",
    metadata,
    sa.Column("processor", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("operation_id", _uuid()),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("received_at", _time(), nullable=False),
)

exposure = sa.Table(
    "paymentorch_exposure",
    metadata,
    sa.Column("customer_id", sa.String(100), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("amount", _money(), nullable=False),
)

plans = sa.Table(
    "paymentorch_plans",
    metadata,
    sa.Column("payment_id", _uuid(), primary_key=True),
    sa.Column("amount", _money(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("installments", sa.Integer(), nullable=False),
    sa.Column("interval_seconds", sa.BigInteger(), nullable=False),
    sa.Column("remainder", sa.String(8), nullable=False),
    sa.Column("refund_allocation", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("collection_stopped", sa.Boolean(), nullable=False, server_default=sa.false()),
)

installments = sa.Table(
    "paymentorch_installments",
    metadata,
    sa.Column("payment_id", _uuid(), primary_key=True),
    sa.Column("number", sa.Integer(), primary_key=True),
    sa.Column("amount", _money(), nullable=False),
    sa.Column("due_at", _time(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("paid_at", _time()),
    sa.Column("refunded_amount", _money(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", _time()),
    sa.Column("last_decline", sa.String(64)),
    # The smallest reminder offset written (seconds before due_at), None before any.
    sa.Column("reminded_seconds", sa.BigInteger()),
    # ``attempts`` when the retry ladder last started (a person resumed collection).
    sa.Column("ladder_start", sa.Integer(), nullable=False, server_default="0"),
    sa.Index("paymentorch_installments_due", "status", "due_at"),
)

late_fees = sa.Table(
    "paymentorch_late_fees",
    metadata,
    sa.Column("payment_id", _uuid(), primary_key=True),
    sa.Column("seq", sa.Integer(), primary_key=True),
    sa.Column("installment", sa.Integer(), nullable=False),
    sa.Column("amount", _money(), nullable=False),
    sa.Column("charged_at", _time(), nullable=False),
    sa.Column("paid_at", _time()),
    sa.Column("waived_at", _time()),
)

request_keys = sa.Table(
    "paymentorch_request_keys",
    metadata,
    # A transition's idempotency key, unique per caller (the actor's id), claimed with it.
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("payment_id", _uuid(), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("request", sa.Text(), nullable=False),
    sa.Column("payment", sa.Text(), nullable=False),  # as the change left it, for a repeat
    sa.Column("created_at", _time(), nullable=False),
    sa.PrimaryKeyConstraint("scope", "key", name="paymentorch_request_keys_pkey"),
    sa.Index("paymentorch_request_keys_created", "created_at"),
)


journal_entries = sa.Table(
    "paymentorch_journal_entries",
    metadata,
    sa.Column("id", _uuid(), primary_key=True),
    sa.Column("payment_id", _uuid(), nullable=False),
    sa.Column("operation_id", _uuid()),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", _time(), nullable=False),
    sa.Column("correlation_id", sa.String(200)),
    sa.Index("paymentorch_journal_entries_payment", "payment_id", "id"),
)

# The lines of the journal: inserted, never updated. An account's balance is a sum over
# its lines, so that posting to a house account (fees, a merchant's payable) takes no
# lock that unrelated payments wait for.
postings = sa.Table(
    "paymentorch_postings",
    metadata,
    sa.Column("entry_id", _uuid(), primary_key=True),
    sa.Column("line", sa.Integer(), primary_key=True),
    sa.Column("payment_id", _uuid(), nullable=False),
    sa.Column("account_kind", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", _money(), nullable=False),
    sa.Index("paymentorch_postings_account", "account_kind", "owner", "currency"),
    sa.Index("paymentorch_postings_payment", "payment_id"),
)

# Events the relay delivered (their outbox rows are gone): each audit entry's event is
# either still in the outbox or here, which is what the integrity check asks.
deliveries = sa.Table(
    "paymentorch_deliveries",
    metadata,
    sa.Column("event_id", _uuid(), primary_key=True),
    sa.Column("payment_id", _uuid(), nullable=False),
    sa.Index("paymentorch_deliveries_payment", "payment_id"),
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """For a host's Alembic ``include_object``: paymentorch's tables belong to paymentorch.

    Keeps autogenerate in a host's environment from dropping or duplicating them when the
    host migrates with ``po.migrate`` instead. Objects of other tables pass through.
    """
    table_name = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    return not (table_name or "").startswith(PREFIX)


__all__ = [
    "PREFIX",
    "VERSION_TABLE",
    "audit_entries",
    "deliveries",
    "exposure",
    "inbox",
    "include_object",
    "installments",
    "journal_entries",
    "late_fees",
    "metadata",
    "operations",
    "outbox",
    "payments",
    "plans",
    "postings",
    "request_keys",
]
