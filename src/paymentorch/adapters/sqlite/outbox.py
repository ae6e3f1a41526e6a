"""The SQLite store's outbox: claimed head events first, each payment's events in order."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from paymentorch.adapters._sql import OUTBOX_READ
from paymentorch.adapters.sqlite.connection import SQLiteConnection
from paymentorch.adapters.sqlite.statements import (
    CLAIM,
    parse_time,
    row_message,
    time_text,
    transaction,
)
from paymentorch.ports import OutboxMessage, OutboxStats


class SQLiteOutbox(SQLiteConnection):
    """The outbox of ``SQLitePaymentStore``: events its changes wrote, leased to relays."""

    async def claim_events(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[OutboxMessage]:
        """Lease due events, each payment's head event only, oldest first."""
        stamp = time_text(now)
        rows = await self._run(
            lambda conn: transaction(
                conn,
                lambda c: c.execute(
                    CLAIM, (time_text(lease_until), stamp, stamp, limit)
                ).fetchall(),
            )
        )
        rows.sort(key=lambda r: r[-1])
        return [row_message(r) for r in rows]

    async def mark_delivered(self, event_ids: Sequence[UUID]) -> None:
        """Delete delivered events, keeping which they were for the integrity check."""

        def body(conn: sqlite3.Connection) -> None:
            ids = [(i.hex,) for i in event_ids]
            conn.executemany(  # what was delivered, for the integrity check
                "INSERT OR IGNORE INTO paymentorch_deliveries (event_id, payment_id)"
                " SELECT event_id, payment_id FROM paymentorch_outbox WHERE event_id = ?",
                ids,
            )
            conn.executemany("DELETE FROM paymentorch_outbox WHERE event_id = ?", ids)

        await self._run(lambda conn: transaction(conn, body))

    async def mark_failed(
        self, event_ids: Sequence[UUID], *, error: str, retry_at: datetime | None
    ) -> None:
        """Count a failed attempt; schedule a retry, or park when ``retry_at`` is None."""
        state = "pending" if retry_at is not None else "parked"
        when = None if retry_at is None else time_text(retry_at)

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE paymentorch_outbox SET attempts = attempts + 1, last_error = ?,"
                " available_at = ?, lease_until = NULL, state = ?"
                " WHERE event_id = ? AND state = 'pending'",
                [(error[:1000], when, state, i.hex) for i in event_ids],
            )

        await self._run(lambda conn: transaction(conn, body))

    async def outbox_stats(self) -> OutboxStats:
        """Pending and parked counts, and when the oldest pending event occurred."""
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT count(*) FILTER (WHERE state = 'pending'),"
                " min(occurred_at) FILTER (WHERE state = 'pending'),"
                " count(*) FILTER (WHERE state = 'parked') FROM paymentorch_outbox"
            ).fetchone()
        )
        return OutboxStats(
            pending=row[0], oldest_pending_at=row[1] and parse_time(row[1]), parked=row[2]
        )

    async def parked_events(self, limit: int = 100) -> list[OutboxMessage]:
        """Parked events, oldest first."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {OUTBOX_READ} FROM paymentorch_outbox WHERE state = 'parked'"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [row_message(r) for r in rows]

    async def requeue_parked(self, event_ids: Sequence[UUID] | None = None) -> int:
        """Make parked events pending again with a fresh attempt count."""
        sql = (
            "UPDATE paymentorch_outbox SET state = 'pending', attempts = 0,"
            " available_at = NULL, lease_until = NULL WHERE state = 'parked'"
        )

        def body(conn: sqlite3.Connection) -> int:
            if event_ids is None:
                return conn.execute(sql).rowcount
            return sum(
                conn.execute(sql + " AND event_id = ?", (i.hex,)).rowcount for i in event_ids
            )

        return await self._run(lambda conn: transaction(conn, body))
