"""Money corrections: a collection names its installment, a refund on a plan sends the
processor only what goes back to the customer, late fees are paid or waived with their
installment, and exposure is counted in every currency, credit policy or not.

Fees charged before this revision were never collected; those of installments no longer
owed are waived now (the customer was never asked for them), those of installments still
owed are collected with them. Exposure is rebuilt from payments and plans.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


_OWED = """
FROM (
  SELECT customer_id, currency, amount FROM paymentorch_payments
  WHERE status IN ('Pending', 'Authorized')
  UNION ALL
  SELECT p.customer_id, p.currency, i.amount FROM paymentorch_installments i
  JOIN paymentorch_payments p ON p.id = i.payment_id
  WHERE p.status = 'Confirmed' AND i.status IN ('scheduled', 'overdue')
) AS owed GROUP BY customer_id, currency
"""
_SCALED = "sum(CAST(round(amount * 10000) AS INTEGER))"  # 10^-4 units, as integers
EXPOSURE_SQL = {
    "postgresql": "SELECT customer_id, currency, sum(amount)" + _OWED,
    "sqlite": f"SELECT customer_id, currency, ({_SCALED} / 10000) || '.' ||"
    f" substr('0000' || ({_SCALED} % 10000), -4)" + _OWED,
}


def _money() -> Any:
    return sa.Numeric().with_variant(sa.String(40), "sqlite")


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("paymentorch_operations") as batch:
        batch.add_column(sa.Column("installment", sa.Integer()))
        batch.add_column(sa.Column("processor_amount", _money()))
    with op.batch_alter_table("paymentorch_late_fees") as batch:
        batch.add_column(sa.Column("paid_at", _time()))
        batch.add_column(sa.Column("waived_at", _time()))
    dialect = op.get_context().dialect.name
    op.execute(
        "UPDATE paymentorch_operations SET installment = CAST(substr(idempotency_key, 13)"
        " AS INTEGER) WHERE kind = 'installment' AND idempotency_key LIKE 'installment-%'"
    )
    now = datetime.now(UTC)
    stamp = f"'{now.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'" if dialect == "sqlite" else "now()"
    op.execute(
        f"UPDATE paymentorch_late_fees SET waived_at = {stamp}"
        " WHERE NOT EXISTS (SELECT 1 FROM paymentorch_installments i"
        " WHERE i.payment_id = paymentorch_late_fees.payment_id"
        " AND i.number = paymentorch_late_fees.installment"
        " AND i.status IN ('scheduled', 'overdue'))"
    )
    op.execute("DELETE FROM paymentorch_exposure")
    op.execute(
        "INSERT INTO paymentorch_exposure (customer_id, currency, amount) " + EXPOSURE_SQL[dialect]
    )


def downgrade() -> None:
    with op.batch_alter_table("paymentorch_late_fees") as batch:
        batch.drop_column("waived_at")
        batch.drop_column("paid_at")
    with op.batch_alter_table("paymentorch_operations") as batch:
        batch.drop_column("processor_amount")
        batch.drop_column("installment")
