"""Processor callbacks: an inbox that takes each (processor, event id) once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _uuid() -> Any:
    return sa.Uuid().with_variant(sa.String(32), "sqlite")


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "paymentorch_inbox",
        sa.Column("processor", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("operation_id", _uuid()),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("received_at", _time(), nullable=False),
    )
    op.create_index(
        "paymentorch_operations_reference", "paymentorch_operations", ["processor", "reference"]
    )


def downgrade() -> None:
    op.drop_index("paymentorch_operations_reference", table_name="paymentorch_operations")
    op.drop_table("paymentorch_inbox")
