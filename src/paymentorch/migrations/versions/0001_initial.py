"""Payments, audit entries and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _uuid() -> Any:
    return sa.Uuid().with_variant(sa.String(32), "sqlite")


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _json() -> Any:
    return (
        sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
    )


def _serial() -> Any:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "paymentorch_payments",
        sa.Column("id", _uuid(), primary_key=True),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("amount", sa.Numeric().with_variant(sa.String(40), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.String(500)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("metadata", _json(), nullable=False),
        sa.CheckConstraint(
            "status IN ('Pending', 'Confirmed', 'Failed', 'Cancelled')",
            name="paymentorch_payments_status",
        ),
    )
    op.create_index(
        "paymentorch_payments_idempotency_key",
        "paymentorch_payments",
        ["idempotency_key"],
        unique=True,
    )
    op.create_index("paymentorch_payments_created", "paymentorch_payments", ["created_at", "id"])
    op.create_index(
        "paymentorch_payments_status_created",
        "paymentorch_payments",
        ["status", "created_at", "id"],
    )
    op.create_index(
        "paymentorch_payments_customer_created",
        "paymentorch_payments",
        ["customer_id", "created_at", "id"],
    )
    op.create_table(
        "paymentorch_audit_entries",
        sa.Column("seq", _serial(), primary_key=True, autoincrement=True),
        sa.Column("payment_id", _uuid(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("correlation_id", sa.String(200)),
    )
    op.create_index(
        "paymentorch_audit_entries_payment", "paymentorch_audit_entries", ["payment_id", "seq"]
    )
    op.create_table(
        "paymentorch_outbox",
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
        sa.CheckConstraint("state IN ('pending', 'parked')", name="paymentorch_outbox_state"),
    )
    op.create_index("paymentorch_outbox_payment", "paymentorch_outbox", ["payment_id", "seq"])
    op.create_index("paymentorch_outbox_state", "paymentorch_outbox", ["state", "seq"])


def downgrade() -> None:
    op.drop_table("paymentorch_outbox")
    op.drop_table("paymentorch_audit_entries")
    op.drop_table("paymentorch_payments")
