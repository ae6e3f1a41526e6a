"""The books: journal entries and their postings, each audit entry's event, the events
delivered; and an opening entry for every payment that holds money, so that an upgraded
database's books agree with its payments and plans from the start.

An opening entry (kind ``opening``, one per payment) posts what the payment stands for
now: the merchant's payable (captured less refunded), what the customer still owes on a
running plan, the fees charged, what was written off, and, against them, what came in
less what went back, in the clearing account ``manual`` (which processor moved money
before the books existed is not recorded).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from paymentorch.domain.ids import uuid7

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 1000
_ZERO = Decimal(0)


def _uuid() -> Any:
    return sa.Uuid().with_variant(sa.String(32), "sqlite")


def _time() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _money() -> Any:
    return sa.Numeric().with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    entries = op.create_table(
        "paymentorch_journal_entries",
        sa.Column("id", _uuid(), primary_key=True),
        sa.Column("payment_id", _uuid(), nullable=False),
        sa.Column("operation_id", _uuid()),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("correlation_id", sa.String(200)),
    )
    op.create_index(
        "paymentorch_journal_entries_payment", "paymentorch_journal_entries", ["payment_id", "id"]
    )
    postings = op.create_table(
        "paymentorch_postings",
        sa.Column("entry_id", _uuid(), primary_key=True),
        sa.Column("line", sa.Integer(), primary_key=True),
        sa.Column("payment_id", _uuid(), nullable=False),
        sa.Column("account_kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", _money(), nullable=False),
    )
    op.create_index(
        "paymentorch_postings_account",
        "paymentorch_postings",
        ["account_kind", "owner", "currency"],
    )
    op.create_index("paymentorch_postings_payment", "paymentorch_postings", ["payment_id"])
    op.create_table(
        "paymentorch_deliveries",
        sa.Column("event_id", _uuid(), primary_key=True),
        sa.Column("payment_id", _uuid(), nullable=False),
    )
    op.create_index("paymentorch_deliveries_payment", "paymentorch_deliveries", ["payment_id"])
    with op.batch_alter_table("paymentorch_audit_entries") as batch:
        batch.add_column(sa.Column("event_id", _uuid()))
    if not op.get_context().as_sql:  # opening entries are data: written when migrating a database
        _open_the_books(op.get_bind(), entries, postings)


def _open_the_books(bind: Any, entries: sa.Table, postings: sa.Table) -> None:
    sqlite = bind.dialect.name == "sqlite"
    now = datetime.now(UTC)
    after: Any = None
    while True:
        where = "" if after is None else " WHERE id > :after"
        rows = bind.execute(
            sa.text(
                "SELECT id, customer_id, currency, captured_amount, refunded_amount, has_plan"
                f" FROM paymentorch_payments{where} ORDER BY id LIMIT {BATCH}"
            ),
            {"after": after},
        ).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        plans = _plans(bind, [r[0] for r in rows if r[5]])
        new_entries, new_lines = [], []
        for pid, customer, currency, captured, refunded, has_plan in rows:
            lines = _opening_lines(
                Decimal(str(captured)),
                Decimal(str(refunded)),
                plans.get(pid) if has_plan else None,
            )
            lines = [(kind, customer if kind == "receivable" else owner, a)
                     for kind, owner, a in lines if a]  # fmt: skip
            if not lines:
                continue
            entry_id = uuid7()  # time-ordered: the opening entry comes first
            ids = (entry_id.hex, pid) if sqlite else (entry_id, pid)
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if sqlite else now
            new_entries.append({"id": ids[0], "payment_id": ids[1], "operation_id": None,
                                "kind": "opening", "at": stamp,
                                "correlation_id": None})  # fmt: skip
            for number, (kind, owner, amount) in enumerate(lines, start=1):
                new_lines.append({"entry_id": ids[0], "line": number, "payment_id": ids[1],
                                  "account_kind": kind, "owner": owner, "currency": currency,
                                  "amount": str(amount) if sqlite else amount})  # fmt: skip
        if new_entries:
            op.bulk_insert(entries, new_entries)
            op.bulk_insert(postings, new_lines)


def _plans(bind: Any, payment_ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """Each plan's status, installments and fees, as the opening entry needs them."""
    if not payment_ids:
        return {}
    found: dict[Any, dict[str, Any]] = defaultdict(lambda: {"installments": [], "fees": []})
    ids: Any = sa.bindparam("ids", expanding=True)
    for pid, status in bind.execute(
        sa.text("SELECT payment_id, status FROM paymentorch_plans WHERE payment_id IN :ids")
        .bindparams(ids), {"ids": payment_ids}
    ):  # fmt: skip
        found[pid]["status"] = status
    for pid, amount, state, refunded in bind.execute(
        sa.text("SELECT payment_id, amount, status, refunded_amount"
                " FROM paymentorch_installments WHERE payment_id IN :ids").bindparams(ids),
        {"ids": payment_ids},
    ):  # fmt: skip
        found[pid]["installments"].append((Decimal(str(amount)), state, Decimal(str(refunded))))
    for pid, amount, paid_at, waived_at in bind.execute(
        sa.text("SELECT payment_id, amount, paid_at, waived_at FROM paymentorch_late_fees"
                " WHERE payment_id IN :ids").bindparams(ids),
        {"ids": payment_ids},
    ):  # fmt: skip
        found[pid]["fees"].append((Decimal(str(amount)), paid_at, waived_at))
    return found


def _opening_lines(
    captured: Decimal, refunded: Decimal, plan: dict[str, Any] | None
) -> list[tuple[str, str, Decimal]]:
    """The lines of a payment's opening entry: what it stands for now (as the books'
    ``standing`` computes it, written out here so that this revision never changes)."""
    payable = captured - refunded
    if plan is None:
        collected, returned = captured, refunded
        receivable = fees = written_off = _ZERO
    else:
        installments, late = plan["installments"], plan["fees"]
        unpaid = sum((a for a, s, _ in installments if s in ("scheduled", "overdue")), _ZERO)
        fees_unpaid = sum((a for a, paid, waived in late if paid is None and waived is None),
                          _ZERO)  # fmt: skip
        running = plan.get("status") in ("active", "delinquent")
        receivable = unpaid + fees_unpaid if running else _ZERO
        fees = sum((a for a, _, _ in late), _ZERO)
        written_off = sum((a for a, s, _ in installments if s == "cancelled"), _ZERO) + sum(
            (a for a, _, waived in late if waived is not None), _ZERO
        )
        collected = sum((a for a, s, _ in installments if s == "paid"), _ZERO) + sum(
            (a for a, paid, _ in late if paid is not None), _ZERO
        )
        returned = sum((r for _, _, r in installments), _ZERO)
    return [
        ("receivable", "", receivable),
        ("clearing", "manual", collected - returned),
        ("writeoffs", "", written_off),
        ("fees", "", -fees),
        ("payable", "default", -payable),
    ]


def downgrade() -> None:
    with op.batch_alter_table("paymentorch_audit_entries") as batch:
        batch.drop_column("event_id")
    op.drop_index("paymentorch_deliveries_payment", table_name="paymentorch_deliveries")
    op.drop_table("paymentorch_deliveries")
    op.drop_index("paymentorch_postings_payment", table_name="paymentorch_postings")
    op.drop_index("paymentorch_postings_account", table_name="paymentorch_postings")
    op.drop_table("paymentorch_postings")
    op.drop_index("paymentorch_journal_entries_payment", table_name="paymentorch_journal_entries")
    op.drop_table("paymentorch_journal_entries")
