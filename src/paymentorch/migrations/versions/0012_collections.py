"""Collections: each installment's attempts, next attempt, last decline code and the
reminders written; whether a plan's automatic collection stopped.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.add_column(
        "paymentorch_plans",
        sa.Column("collection_stopped", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for column in (
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _time()),
        sa.Column("last_decline", sa.String(64)),
        sa.Column("reminded_seconds", sa.BigInteger()),
        sa.Column("ladder_start", sa.Integer(), nullable=False, server_default="0"),
    ):
        op.add_column("paymentorch_installments", column)
    # Collections sent before this revision count as attempts.
    op.execute(
        "UPDATE paymentorch_installments SET attempts = (SELECT count(*)"
        " FROM paymentorch_operations o WHERE o.payment_id = paymentorch_installments.payment_id"
        " AND o.kind = 'installment' AND o.installment = paymentorch_installments.number)"
    )


def downgrade() -> None:
    with op.batch_alter_table("paymentorch_installments") as batch:
        for name in ("ladder_start", "reminded_seconds", "last_decline", "next_attempt_at",
                     "attempts"):  # fmt: skip
            batch.drop_column(name)
    with op.batch_alter_table("paymentorch_plans") as batch:
        batch.drop_column("collection_stopped")
