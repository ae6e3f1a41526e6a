"""Credit limits: each customer's exposure per currency, one row to reserve against.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


_OWED = "FROM paymentorch_payments WHERE status IN ('Pending', 'Authorized')"
_SCALED = "sum(CAST(round(amount * 10000) AS INTEGER))"  # 10^-4 units, as integers
OWED_SQL = {
    "postgresql": "INSERT INTO paymentorch_exposure (customer_id, currency, amount)"
    f" SELECT customer_id, currency, sum(amount) {_OWED} GROUP BY customer_id, currency",
    "sqlite": "INSERT INTO paymentorch_exposure (customer_id, currency, amount)"
    f" SELECT customer_id, currency, ({_SCALED} / 10000) || '.' ||"
    f" substr('0000' || ({_SCALED} % 10000), -4) {_OWED} GROUP BY customer_id, currency",
}


def _money() -> Any:
    return sa.Numeric().with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    exposure = op.create_table(
        "paymentorch_exposure",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("amount", _money(), nullable=False),
    )
    # What is owed already: Pending and Authorized payments, added exactly (SQLite keeps
    # amounts as text, and its sum() would add them as floats).
    if op.get_context().as_sql:  # printing SQL: one statement, exact on each backend
        op.execute(OWED_SQL[op.get_context().dialect.name])
        return
    bind = op.get_bind()
    owed: dict[tuple[str, str], Decimal] = {}
    rows = bind.execute(
        sa.text(
            "SELECT customer_id, currency, amount FROM paymentorch_payments"
            " WHERE status IN ('Pending', 'Authorized')"
        )
    )
    for customer_id, currency, amount in rows:
        key = (customer_id, currency)
        owed[key] = owed.get(key, Decimal(0)) + Decimal(str(amount))
    if owed:
        text = bind.dialect.name == "sqlite"
        op.bulk_insert(
            exposure,
            [
                {"customer_id": c, "currency": k, "amount": str(v) if text else v}
                for (c, k), v in owed.items()
            ],
        )


def downgrade() -> None:
    op.drop_table("paymentorch_exposure")
