"""Idempotency keys on transitions: each caller's key, claimed with the change it made,
and the payment as that change left it (what a repeat returns).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _uuid() -> Any:
    return sa.Uuid().with_variant(sa.String(32), "sqlite")


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "paymentorch_request_keys",
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payment_id", _uuid(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("payment", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="paymentorch_request_keys_pkey"),
    )
    op.create_index("paymentorch_request_keys_created", "paymentorch_request_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("paymentorch_request_keys_created", table_name="paymentorch_request_keys")
    op.drop_table("paymentorch_request_keys")
