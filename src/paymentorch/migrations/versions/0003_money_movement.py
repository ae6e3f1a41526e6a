"""Money movement: captured, refunded and reserved amounts, operations, event operations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_STATUSES = "'Pending', 'Confirmed', 'Failed', 'Cancelled'"
NEW_STATUSES = "'Pending', 'Authorized', 'Confirmed', 'Failed', 'Cancelled', 'Refunded'"


def _money() -> Any:
    return sa.Numeric().with_variant(sa.String(40), "sqlite")


def _uuid() -> Any:
    return sa.Uuid().with_variant(sa.String(32), "sqlite")


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _json() -> Any:
    return (
        sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
    )


def _statuses(allowed: str) -> None:
    # SQLite cannot alter a constraint in place: batch mode rebuilds the table.
    with op.batch_alter_table("paymentorch_payments") as batch:
        batch.drop_constraint("paymentorch_payments_status", type_="check")
        batch.create_check_constraint("paymentorch_payments_status", f"status IN ({allowed})")


def upgrade() -> None:
    with op.batch_alter_table("paymentorch_payments") as batch:
        for name in ("captured_amount", "refunded_amount", "pending_refunds"):
            batch.add_column(sa.Column(name, _money(), nullable=False, server_default="0"))
    # Confirmed payments captured their whole amount.
    op.execute(
        "UPDATE paymentorch_payments SET captured_amount = amount WHERE status = 'Confirmed'"
    )
    _statuses(NEW_STATUSES)
    op.add_column("paymentorch_outbox", sa.Column("operation", _json()))
    op.create_table(
        "paymentorch_operations",
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
    )
    op.create_index(
        "paymentorch_operations_payment",
        "paymentorch_operations",
        ["payment_id", "created_at", "id"],
    )
    op.create_index(
        "paymentorch_operations_key",
        "paymentorch_operations",
        ["payment_id", "idempotency_scope", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("paymentorch_operations")
    op.drop_column("paymentorch_outbox", "operation")
    _statuses(OLD_STATUSES)
    with op.batch_alter_table("paymentorch_payments") as batch:
        for name in ("captured_amount", "refunded_amount", "pending_refunds"):
            batch.drop_column(name)
