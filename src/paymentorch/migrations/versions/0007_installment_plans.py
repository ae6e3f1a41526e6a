"""Installment plans: a plan per payment paid in installments, its installments and
its late fees; payments say whether they have one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _uuid() -> Any:
    return sa.Uuid().with_variant(sa.String(32), "sqlite")


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _money() -> Any:
    return sa.Numeric().with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("paymentorch_payments") as batch:
        batch.add_column(
            sa.Column("has_plan", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "paymentorch_plans",
        sa.Column("payment_id", _uuid(), primary_key=True),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("installments", sa.Integer(), nullable=False),
        sa.Column("interval_seconds", sa.BigInteger(), nullable=False),
        sa.Column("remainder", sa.String(8), nullable=False),
        sa.Column("refund_allocation", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "paymentorch_installments",
        sa.Column("payment_id", _uuid(), primary_key=True),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("due_at", _time(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paid_at", _time()),
        sa.Column("refunded_amount", _money(), nullable=False),
    )
    op.create_index(
        "paymentorch_installments_due", "paymentorch_installments", ["status", "due_at"]
    )
    op.create_table(
        "paymentorch_late_fees",
        sa.Column("payment_id", _uuid(), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("installment", sa.Integer(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("charged_at", _time(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paymentorch_late_fees")
    op.drop_index("paymentorch_installments_due", table_name="paymentorch_installments")
    op.drop_table("paymentorch_installments")
    op.drop_table("paymentorch_plans")
    with op.batch_alter_table("paymentorch_payments") as batch:
        batch.drop_column("has_plan")
