"""Idempotency keys are scoped by the caller: ``(idempotency_scope, idempotency_key)``.

Existing keys take the id of the actor who created their payment, read from the
payment's ``created`` audit entry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("paymentorch_payments", sa.Column("idempotency_scope", sa.String(200)))
    op.execute(
        "UPDATE paymentorch_payments SET idempotency_scope = ("
        " SELECT a.actor_id FROM paymentorch_audit_entries a"
        " WHERE a.payment_id = paymentorch_payments.id AND a.action = 'created'"
        " ORDER BY a.seq LIMIT 1)"
        " WHERE idempotency_key IS NOT NULL"
    )
    op.drop_index("paymentorch_payments_idempotency_key", table_name="paymentorch_payments")
    op.create_index(
        "paymentorch_payments_idempotency",
        "paymentorch_payments",
        ["idempotency_scope", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    # Two callers may hold the same key by now; the old unique index would refuse them.
    op.drop_index("paymentorch_payments_idempotency", table_name="paymentorch_payments")
    op.create_index(
        "paymentorch_payments_idempotency_key",
        "paymentorch_payments",
        ["idempotency_key"],
        unique=True,
    )
    op.drop_column("paymentorch_payments", "idempotency_scope")
