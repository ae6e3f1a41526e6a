"""Keeping the store in shape: releasing old keys, recounting exposure, the health check."""

from __future__ import annotations

import time
from datetime import timedelta

from paymentorch.domain import OperationStatus, PaymentError
from paymentorch.domain.results import HealthReport, HealthStatus
from paymentorch.domain.validation import KEY_RETENTION

from .context import Context, bad, logger


async def purge_keys(ctx: Context, older_than: timedelta) -> int:
    """Release idempotency keys held longer than ``older_than`` (24 hours at least)."""
    if not isinstance(older_than, timedelta) or older_than < KEY_RETENTION:
        raise bad("older_than", "must be a timedelta of at least 24 hours", "range")
    return await ctx.store.purge_idempotency_keys(ctx.clock() - older_than)


async def rebuild_exposure(ctx: Context) -> int:
    """Recount every customer's exposure; how many figures were wrong."""
    return await ctx.store.rebuild_exposure()


async def health(ctx: Context) -> HealthReport:
    """The store's round trip, the outbox's lag, the operations waiting for a person."""
    start = time.perf_counter()
    try:
        await ctx.store.ping()
        latency_ms = (time.perf_counter() - start) * 1000
        stats = await ctx.store.outbox_stats()
        attention = await ctx.store.operations_with_status(
            OperationStatus.NEEDS_ATTENTION, limit=1000
        )
    except PaymentError as exc:  # the driver's text stays in the log, not the report
        logger.warning("health check: the store did not answer", exc_info=True)
        return HealthReport("down", {"store": {"status": "down", "error": exc.code}, "outbox": {}})
    age = (
        0.0
        if stats.oldest_pending_at is None
        else max(0.0, (ctx.clock() - stats.oldest_pending_at).total_seconds())
    )
    lagging = age > ctx.lag_threshold.total_seconds() or stats.parked > 0
    status: HealthStatus = "degraded" if lagging or attention else "ok"
    return HealthReport(
        status,
        {
            "store": {
                "status": "ok",
                "backend": ctx.store.backend,
                "latency_ms": round(latency_ms, 3),
            },
            "outbox": {
                "status": "degraded" if lagging else "ok",
                "pending": stats.pending,
                "parked": stats.parked,
                "oldest_pending_age_s": round(age, 3),
            },
            "operations": {
                "status": "degraded" if attention else "ok",
                "needing_attention": len(attention),
            },
        },
    )
