"""Operations carried out by a worker: when they are due, lookups made, leases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.add_column("paymentorch_operations", sa.Column("due_at", _time()))
    op.add_column(
        "paymentorch_operations",
        sa.Column("lookups", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("paymentorch_operations", sa.Column("lease_until", _time()))
    op.create_index("paymentorch_operations_due", "paymentorch_operations", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("paymentorch_operations_due", table_name="paymentorch_operations")
    with op.batch_alter_table("paymentorch_operations") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lookups")
        batch.drop_column("due_at")
