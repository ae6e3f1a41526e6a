"""Bulk creation against raw COPY, and listing depth: keyset against OFFSET."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

import paymentorch as po
from benchmarks.harness import ADMIN, Databases
from paymentorch.adapters._sql import AUDIT_COLUMNS, OUTBOX_COLUMNS, PAYMENT_COLUMNS
from paymentorch.domain import Payment, PaymentStatus
from paymentorch.domain.cursor import encode_cursor


async def create_payments(db: Databases, count: int) -> float:
    """Seconds for ``service.create_payments`` of ``count`` payments."""
    items = [po.NewPayment("ABCD-12345", "125.50") for _ in range(count)]
    async with await po.open_service(db.fresh_postgres(), pool_size=1) as service:
        start = time.perf_counter()
        await service.create_payments(items, actor=ADMIN)
        return time.perf_counter() - start


async def raw_copy(db: Databases, count: int) -> float:
    """Seconds for hand-written COPY of the same rows into the same three tables."""
    url = db.fresh_postgres()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        now = datetime.now(UTC)
        ids = [uuid.uuid4() for _ in range(count)]
        async with conn.transaction(), conn.cursor() as cur:
            async with cur.copy(
                f"COPY paymentorch_payments ({PAYMENT_COLUMNS}) FROM STDIN"
            ) as copy:
                for pid in ids:
                    await copy.write_row(
                        (
                            pid,
                            "ABCD-12345",
                            Decimal("125.50"),
                            "USD",
                            "Pending",
                            now,
                            now,
                            1,
                            None,
                            None,
                            Jsonb({}),
                            Decimal(0),
                            Decimal(0),
                            Decimal(0),
                            False,
                        )
                    )
            async with cur.copy(
                f"COPY paymentorch_audit_entries ({AUDIT_COLUMNS}) FROM STDIN"
            ) as copy:
                for pid in ids:
                    await copy.write_row(
                        (pid, "created", None, "Pending", "bench", now, None, None)
                    )
            async with cur.copy(f"COPY paymentorch_outbox ({OUTBOX_COLUMNS}) FROM STDIN") as copy:
                for pid in ids:
                    payload = {"id": str(pid), "amount": "125.50", "status": "Pending"}
                    await copy.write_row(
                        (
                            uuid.uuid4(),
                            pid,
                            "payment.created",
                            now,
                            Jsonb(payload),
                            "bench",
                            None,
                            None,
                        )
                    )
        return time.perf_counter() - start


def seed_listing(db: Databases, count: int) -> None:
    """``count`` payments, one per millisecond, written by the server itself."""
    url = db.fresh_postgres()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO paymentorch_payments (id, customer_id, amount, currency, status,"
            " created_at, updated_at, version, metadata)"
            " SELECT gen_random_uuid(), 'ABCD-' || lpad((i %% 100000)::text, 5, '0'), 10.00,"
            " 'USD', 'Pending', t, t, 1, '{}'"
            " FROM generate_series(1, %s) AS i,"
            " LATERAL (SELECT now() - make_interval(secs => i / 1000.0) AS t) AS times",
            (count,),
        )
        conn.execute("VACUUM ANALYZE paymentorch_payments")


async def page_times(db: Databases, depths: list[int], repeats: int) -> dict[str, Any]:
    """Median seconds for one page of 50 at each depth, keyset (the service) against OFFSET."""
    url = db.pg_url
    results: dict[str, Any] = {}
    async with await po.open_service(url, pool_size=2, cache=None) as service:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            for depth in depths:
                cur = await conn.execute(
                    "SELECT id, created_at FROM paymentorch_payments"
                    " ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
                    (depth - 1,),
                )
                row = await cur.fetchone()
                assert row is not None
                cursor = encode_cursor(_position(row[0], row[1]))
                # Each in its own loop: a keyset page timed right after an OFFSET that
                # read 900,000 rows took twice as long as one timed after another page.
                keyset, offset = [], []
                for _ in range(repeats):
                    start = time.perf_counter()
                    page = await service.list_payments(limit=50, cursor=cursor)
                    keyset.append(time.perf_counter() - start)
                for _ in range(repeats):
                    start = time.perf_counter()
                    cur = await conn.execute(
                        f"SELECT {PAYMENT_COLUMNS} FROM paymentorch_payments"
                        " ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 50",
                        (depth,),
                    )
                    rows = await cur.fetchall()
                    offset.append(time.perf_counter() - start)
                assert [p.id for p in page.items] == [r[0] for r in rows]
                results[str(depth)] = {
                    "keyset_ms": round(statistics.median(keyset) * 1000, 3),
                    "offset_ms": round(statistics.median(offset) * 1000, 3),
                }
        finally:
            await conn.close()
    return results


def _position(pid: uuid.UUID, created_at: datetime) -> Payment:
    return Payment(
        id=pid,
        customer_id="-",
        amount=Decimal(1),
        currency="USD",
        status=PaymentStatus.PENDING,
        created_at=created_at,
        updated_at=created_at,
    )


async def memory_footprint(count: int) -> dict[str, float]:
    """RSS growth for ``count`` payments held by the in-memory store (events delivered)."""
    import gc

    from benchmarks.harness import rss_mb

    async def drop(_events: Any) -> None:
        return None

    gc.collect()
    before = rss_mb()
    service = await po.open_service("memory://", cache=None)
    relay = po.OutboxRelay(service.store, drop, batch_size=10_000)
    chunk = 10_000
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        await service.create_payments(
            [po.NewPayment("ABCD-12345", "125.50") for _ in range(size)], actor=ADMIN
        )
        while await relay.run_once():  # a relay keeps up, as in a running service
            pass
    gc.collect()
    held = rss_mb() - before
    payments = await service.count_payments()
    trail = len(await service.audit_trail((await service.list_payments(limit=1)).items[0].id))
    await service.aclose()
    return {"payments": payments, "audit_entries_each": trail, "rss_mib": round(held, 1)}
