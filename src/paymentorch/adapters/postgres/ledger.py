"""The PostgreSQL store's books: journals, balances as sums over postings, and the
records the integrity check reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import psycopg

from paymentorch.adapters._sql import (
    exposure_differences_sql,
    journal_from_rows,
    journal_queries,
    records_from_rows,
    records_queries,
)
from paymentorch.adapters.postgres.outbox import PostgresOutbox
from paymentorch.adapters.postgres.statements import SELECT, row_payment, same
from paymentorch.domain.integrity import PaymentRecords
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry
from paymentorch.domain.money import at_scale

# The first batch and the ones after it are two statements, not one with ``%s IS NULL OR
# id > %s``: a generic plan of that one (prepared statements switch to one when the server
# finds it no dearer, or plan_cache_mode says so) filters the index from its start instead
# of seeking the id, and the pass over a million payments turns quadratic.
FIRST_RECORDS: Final = SELECT + " ORDER BY id LIMIT %s"
NEXT_RECORDS: Final = SELECT + " WHERE id > %s ORDER BY id LIMIT %s"


class PostgresLedger(PostgresOutbox):
    """The books of ``PostgresPaymentStore``: postings are written by their change's
    statement and never changed; a balance is a sum over them, so no row is shared by
    the payments that post to one account."""

    async def journal(self, payment_id: UUID) -> list[JournalEntry]:
        """The payment's journal entries, oldest first."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[JournalEntry]:
            found = []
            for query in journal_queries("= %s"):
                cur = await conn.execute(query, (payment_id,))
                found.append(await cur.fetchall())
            return journal_from_rows(*found, uuid=same, time=same)

        return await self._read("read a journal", work)

    async def balance(self, account: Account) -> Decimal:
        """Debits less credits of ``account``."""
        rows = await self._fetch(
            "read a balance",
            "SELECT coalesce(sum(amount), 0) FROM paymentorch_postings"
            " WHERE account_kind = %s AND owner = %s AND currency = %s",
            (account.kind.value, account.owner, account.currency),
        )
        return at_scale(rows[0][0], account.currency)

    async def trial_balance(self) -> dict[tuple[AccountKind, str], Decimal]:
        """Totals by account kind and currency."""
        rows = await self._fetch(
            "read the trial balance",
            "SELECT account_kind, currency, sum(amount) FROM paymentorch_postings"
            " GROUP BY account_kind, currency",
        )
        return {(AccountKind(kind), cur): at_scale(total, cur) for kind, cur, total in rows}

    async def payment_records(self, *, after: UUID | None, limit: int) -> list[PaymentRecords]:
        """Up to ``limit`` payments after ``after`` in id order, with their records, read
        from one snapshot."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[PaymentRecords]:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                if after is None:
                    cur = await conn.execute(FIRST_RECORDS, (limit,))
                else:
                    cur = await conn.execute(NEXT_RECORDS, (after, limit))
                payments = [row_payment(r) for r in await cur.fetchall()]
                if not payments:
                    return []
                # In this snapshot the batch is every payment from its first id to its
                # last: each query reads that range of its index, with two ids to send
                # rather than all of them.
                span = (payments[0].id, payments[-1].id)
                found = []
                for query in records_queries("BETWEEN %s AND %s"):
                    cur = await conn.execute(query, span)
                    found.append(await cur.fetchall())
            return records_from_rows(payments, found, uuid=same, time=same)

        return await self._read("read payments' records", work)

    async def exposure_differences(self) -> list[tuple[str, str, Decimal, Decimal]]:
        """Each customer whose stored exposure is not what its payments and plans owe."""
        rows = await self._fetch(
            "compare exposure", exposure_differences_sql(lambda column: f"sum({column})")
        )
        return [(c, cur, at_scale(s, cur), at_scale(o, cur)) for c, cur, s, o in rows]
