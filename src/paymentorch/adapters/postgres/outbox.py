"""The PostgreSQL store's outbox: each payment's head event, leased with ``SKIP LOCKED``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from paymentorch.adapters._sql import OUTBOX_READ
from paymentorch.adapters.postgres.pool import PostgresPool
from paymentorch.adapters.postgres.statements import CLAIM, row_message
from paymentorch.ports import OutboxMessage, OutboxStats


class PostgresOutbox(PostgresPool):
    """The outbox of ``PostgresPaymentStore``: events its changes wrote, leased to relays."""

    async def claim_events(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[OutboxMessage]:
        """Lease due head events with ``FOR UPDATE SKIP LOCKED``, oldest first."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(CLAIM, {"now": now, "limit": limit, "lease": lease_until})
            return await cur.fetchall()

        rows = await self._write("claim events", work)
        rows.sort(key=lambda r: r[-1])
        return [row_message(r) for r in rows]

    async def mark_delivered(self, event_ids: Sequence[UUID]) -> None:
        """Delete delivered events, keeping which they were for the integrity check."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                "WITH gone AS (DELETE FROM paymentorch_outbox WHERE event_id = ANY(%s)"
                " RETURNING event_id, payment_id)"
                " INSERT INTO paymentorch_deliveries (event_id, payment_id)"
                " SELECT event_id, payment_id FROM gone ON CONFLICT DO NOTHING",
                (list(event_ids),),
            )

        await self._write("mark events delivered", work)

    async def mark_failed(
        self, event_ids: Sequence[UUID], *, error: str, retry_at: datetime | None
    ) -> None:
        """Count a failed attempt; schedule a retry, or park when ``retry_at`` is None."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                "UPDATE paymentorch_outbox SET attempts = attempts + 1, last_error = %s,"
                " available_at = %s, lease_until = NULL, state = %s"
                " WHERE event_id = ANY(%s) AND state = 'pending'",
                (error[:1000], retry_at, "pending" if retry_at else "parked", list(event_ids)),
            )

        await self._write("mark events failed", work)

    async def outbox_stats(self) -> OutboxStats:
        """Pending and parked counts, and when the oldest pending event occurred."""
        rows = await self._fetch(
            "read outbox stats",
            "SELECT count(*) FILTER (WHERE state = 'pending'),"
            " min(occurred_at) FILTER (WHERE state = 'pending'),"
            " count(*) FILTER (WHERE state = 'parked') FROM paymentorch_outbox",
        )
        pending, oldest, parked = rows[0]
        return OutboxStats(pending=pending, oldest_pending_at=oldest, parked=parked)

    async def parked_events(self, limit: int = 100) -> list[OutboxMessage]:
        """Parked events, oldest first."""
        rows = await self._fetch(
            "read parked events",
            f"SELECT {OUTBOX_READ} FROM paymentorch_outbox WHERE state = 'parked'"
            " ORDER BY seq LIMIT %s",
            (limit,),
        )
        return [row_message(r) for r in rows]

    async def requeue_parked(self, event_ids: Sequence[UUID] | None = None) -> int:
        """Make parked events pending again with a fresh attempt count."""
        sql = (
            "UPDATE paymentorch_outbox SET state = 'pending', attempts = 0,"
            " available_at = NULL, lease_until = NULL WHERE state = 'parked'"
        )
        params: tuple[Any, ...] = ()
        if event_ids is not None:
            sql += " AND event_id = ANY(%s)"
            params = (list(event_ids),)

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            return (await conn.execute(sql, params)).rowcount

        return await self._write("re-queue parked events", work)
