"""Build a service from a URL: the backend is chosen by scheme and imported lazily."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import metrics, trace

from paymentorch.clock import utc_now
from paymentorch.domain import FieldError, RolePolicy, ValidationError, ValidationPolicy
from paymentorch.ports import Cache, PaymentStore
from paymentorch.service import PaymentService

# URL scheme -> the adapter module with its ``open_store``; drivers load only when chosen.
BACKENDS: dict[str, str] = {
    "memory": "paymentorch.adapters.memory",
    "sqlite": "paymentorch.adapters.sqlite",
    "sqlite+aiosqlite": "paymentorch.adapters.sqlite",
    "postgresql": "paymentorch.adapters.postgres",
    "postgres": "paymentorch.adapters.postgres",
    "postgresql+psycopg": "paymentorch.adapters.postgres",
}


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Any = _Default()


def loop_bound(url: str) -> bool:
    """Whether the backend ``url`` names must stay on the event loop that opened it.

    Unknown backends are assumed to be bound.
    """
    name = BACKENDS.get(url.split("://", 1)[0].lower()) if isinstance(url, str) else None
    return name is None or bool(getattr(importlib.import_module(name), "LOOP_BOUND", True))


async def open_store(url: str, **options: Any) -> PaymentStore:
    """Open the store that ``url`` names, with backend ``options`` (pool size, durability...)."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            [FieldError("url", "must be a URL such as 'sqlite:///payments.db'", "url")]
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise ValidationError(
            [FieldError("url", f"unknown scheme {scheme!r}; use one of {known}", "scheme")]
        )
    module = importlib.import_module(BACKENDS[scheme])
    opener: Callable[..., Any] = module.open_store
    store: PaymentStore = await opener(url, **options)
    return store


async def open_service(
    url: str,
    *,
    cache: Cache | None = _DEFAULT,
    policy: RolePolicy | None = None,
    validation: ValidationPolicy | None = None,
    default_currency: str = "USD",
    clock: Callable[[], datetime] = utc_now,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    outbox_lag_threshold: timedelta = timedelta(seconds=60),
    **store_options: Any,
) -> PaymentService:
    """Open a ``PaymentService`` on the backend ``url`` names.

    ``memory://``, ``sqlite:///relative.db``, ``sqlite:////absolute.db``,
    ``sqlite:///:memory:``, ``postgresql://user@host:5432/db``. ``cache`` defaults to a
    ``LocalCache`` for ``memory://`` (one process owns the data) and to no cache on SQL
    backends, which other processes may change: pass a cache whose entries are
    invalidated across processes, or a ``LocalCache`` if this is the only process.
    Other keyword options go to the backend (``create_schema``, ``pool_size``,
    ``durability``, ...).
    """
    store = await open_store(url, **store_options)
    if cache is _DEFAULT:
        cache = _default_cache(store)
    try:
        return PaymentService(
            store,
            cache=cache,
            policy=policy,
            validation=validation,
            default_currency=default_currency,
            clock=clock,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            outbox_lag_threshold=outbox_lag_threshold,
        )
    except BaseException:
        await store.aclose()
        raise


def _default_cache(store: PaymentStore) -> Cache | None:
    if store.backend != "memory":
        return None
    from paymentorch.adapters.cache import LocalCache  # noqa: PLC0415 - only when asked

    return LocalCache()


async def migrate(url: str, *, revision: str = "head", sql: bool = False) -> str | None:
    """Create or upgrade paymentorch's tables at ``url`` (PostgreSQL or SQLite).

    Uses the packaged Alembic revisions and their own version table
    (``paymentorch_alembic_version``). With ``sql=True`` nothing runs: the SQL is returned.
    """
    from paymentorch import _migrate  # noqa: PLC0415 - Alembic loads only when migrating

    return await _migrate.migrate(url, revision=revision, sql=sql)
