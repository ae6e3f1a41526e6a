"""Build a service from a URL: the backend is chosen by scheme and imported lazily.

The blocking twin's ``open_sync_service`` is generated from this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import metrics, trace

from paymentorch.adapters import STORES, backend_of
from paymentorch.clock import utc_now
from paymentorch.crypto import FieldEncryption
from paymentorch.domain import RolePolicy, ValidationPolicy
from paymentorch.domain.collections import CollectionPolicy
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.plans import LateFeePolicy
from paymentorch.ports import Cache, PaymentProcessor, PaymentStore
from paymentorch.service import PaymentService


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Any = _Default()


async def open_store(
    url: str, *, encryption: FieldEncryption | None = None, **options: Any
) -> PaymentStore:
    """Open the store that ``url`` names, with backend ``options`` (pool size, durability...);
    with ``encryption``, behind an ``EncryptedStore``."""
    module = importlib.import_module(STORES[backend_of(url)])
    opener: Callable[..., Any] = module.open_store
    store: PaymentStore = await opener(url, **options)
    if encryption is not None:
        from paymentorch.adapters.encrypted import EncryptedStore  # noqa: PLC0415

        return EncryptedStore(store, encryption)
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
    processor: PaymentProcessor | None = None,
    credit: CreditPolicy | None = None,
    late_fees: LateFeePolicy | Iterable[LateFeePolicy] | None = None,
    collections: CollectionPolicy | None = None,
    encryption: FieldEncryption | None = None,
    **store_options: Any,
) -> PaymentService:
    """Open a ``PaymentService`` on the backend ``url`` names.

    ``memory://``, ``sqlite:///relative.db``, ``sqlite:////absolute.db``,
    ``sqlite:///:memory:``, ``postgresql://user@host:5432/db``. ``cache`` defaults to a
    ``LocalCache`` for ``memory://`` (one process owns the data) and to no cache on SQL
    backends, which other processes may change: pass a cache whose entries are
    invalidated across processes, or a ``LocalCache`` if this is the only process.
    ``encryption`` keeps the customer id and metadata values encrypted at rest (see
    ``FieldEncryption``), the cache's entries included. ``late_fees`` takes one
    ``LateFeePolicy`` or several, one per currency; ``collections`` a
    ``CollectionPolicy`` (retries, reminders, charge-off; none when None). Other keyword
    options go to the
    backend:

    - every backend: ``create_schema``; ``deadline`` (seconds or a ``timedelta``; None
      by default) bounds each call's whole time, retries included, past which it raises
      ``StoreUnavailable`` naming the limit.
    - SQLite: ``durability`` (``"normal"``, ``"full"``), ``busy_timeout`` (30 s).
    - PostgreSQL: ``pool_size=10``, ``min_pool_size=None`` (``pool_size``),
      ``connect_timeout=5``, ``pool_timeout=None`` (``connect_timeout``),
      ``max_waiting=0`` (unbounded), ``max_idle=600``, ``max_lifetime=3600``,
      ``reconnect_timeout=10``, ``statement_timeout=None``, ``lock_timeout=None``,
      ``application_name="paymentorch"`` (times in seconds or as ``timedelta``), or
      ``pool=`` a host's own open psycopg_pool pool. The URL's libpq ``options`` and
      ``application_name``, and ``PGOPTIONS``, are kept and win over these.

    Raises:
        ValidationError: a bad URL or option (every problem listed).
        StoreUnavailable: the backend could not be reached.
    """
    store = await open_store(url, encryption=encryption, **store_options)
    if cache is _DEFAULT:
        cache = _default_cache(store)
    if cache is not None and encryption is not None:  # a cache rests no clearer than the store
        from paymentorch.adapters.encrypted import EncryptedCache  # noqa: PLC0415

        cache = EncryptedCache(cache, encryption)
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
            processor=processor,
            credit=credit,
            late_fees=late_fees,
            collections=collections,
        )
    except BaseException:
        await store.aclose()
        raise


def _default_cache(store: PaymentStore) -> Cache | None:
    if store.backend != "memory":
        return None
    from paymentorch.adapters.cache import LocalCache  # noqa: PLC0415 - only when asked

    return LocalCache()
