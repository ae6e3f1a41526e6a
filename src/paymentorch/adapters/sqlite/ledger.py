"""The SQLite store's books: journals, balances as sums over postings, and the records
the integrity check reads."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any
from uuid import UUID

from paymentorch.adapters._sql import (
    PAYMENT_COLUMNS,
    SUMMARY_DIGITS,
    exposure_differences_sql,
    journal_from_rows,
    journal_queries,
    records_from_rows,
    records_queries,
)
from paymentorch.adapters.sqlite.outbox import SQLiteOutbox
from paymentorch.adapters.sqlite.statements import hex_uuid, parse_time, row_payment, scaled
from paymentorch.domain.integrity import PaymentRecords
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry
from paymentorch.domain.money import at_scale


def _units(value: int | None, currency: str) -> Decimal:
    """A sum of ``scaled`` amounts back to a decimal at the currency's scale."""
    return at_scale(Decimal(value or 0).scaleb(-SUMMARY_DIGITS), currency)


class SQLiteLedger(SQLiteOutbox):
    """The books of ``SQLitePaymentStore``: postings are written with their change (see
    ``statements.insert_records``) and never changed; a balance is a sum over them."""

    async def journal(self, payment_id: UUID) -> list[JournalEntry]:
        """The payment's journal entries, oldest first."""
        pid = payment_id.hex

        def body(conn: sqlite3.Connection) -> list[JournalEntry]:
            entries, lines = (conn.execute(q, (pid,)).fetchall() for q in journal_queries("= ?"))
            return journal_from_rows(entries, lines, uuid=hex_uuid, time=parse_time)

        return await self._run(body, inline=True)

    async def balance(self, account: Account) -> Decimal:
        """Debits less credits of ``account``."""
        row = await self._run(
            lambda conn: conn.execute(
                f"SELECT sum({scaled('amount')}) FROM paymentorch_postings"
                " WHERE account_kind = ? AND owner = ? AND currency = ?",
                (account.kind.value, account.owner, account.currency),
            ).fetchone()
        )
        return _units(row[0], account.currency)

    async def trial_balance(self) -> dict[tuple[AccountKind, str], Decimal]:
        """Totals by account kind and currency."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT account_kind, currency, sum({scaled('amount')}) FROM paymentorch_postings"
                " GROUP BY account_kind, currency"
            ).fetchall()
        )
        return {(AccountKind(kind), cur): _units(total, cur) for kind, cur, total in rows}

    async def payment_records(self, *, after: UUID | None, limit: int) -> list[PaymentRecords]:
        """Up to ``limit`` payments after ``after`` in id order, with their records, read
        in one transaction."""

        def body(conn: sqlite3.Connection) -> list[PaymentRecords]:
            conn.execute("BEGIN")  # one snapshot for the batch
            try:
                rows = conn.execute(
                    f"SELECT {PAYMENT_COLUMNS} FROM paymentorch_payments WHERE id > ?"
                    " ORDER BY id LIMIT ?",
                    ("" if after is None else after.hex, limit),
                ).fetchall()
                payments = [row_payment(r) for r in rows]
                if not payments:
                    return []
                ids = [p.id.hex for p in payments]
                among = f"IN ({','.join('?' * len(ids))})"
                found: list[list[Any]] = [
                    conn.execute(query, ids).fetchall() for query in records_queries(among)
                ]
            finally:
                conn.execute("COMMIT")
            return records_from_rows(payments, found, uuid=hex_uuid, time=parse_time)

        return await self._run(body)

    async def exposure_differences(self) -> list[tuple[str, str, Decimal, Decimal]]:
        """Each customer whose stored exposure is not what its payments and plans owe."""
        rows = await self._run(
            lambda conn: conn.execute(
                exposure_differences_sql(lambda column: f"sum({scaled(column)})")
            ).fetchall()
        )
        return [(c, cur, _units(stored, cur), _units(owed, cur)) for c, cur, stored, owed in rows]
