"""The outbox's claim asks, for each pending event, whether its payment has an earlier
pending one: a partial index answers that from pending rows alone, whatever the
planner's statistics say after a burst.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_index(
        "paymentorch_outbox_pending_payment",
        "paymentorch_outbox",
        ["payment_id", "seq"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("paymentorch_outbox_pending_payment", table_name="paymentorch_outbox")
