"""How the contract suite reaches a store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs

from paymentorch.adapters.cache import LocalCache
from paymentorch.ports import PaymentStore
from paymentorch.service import PaymentService


@attrs.frozen
class Backend:
    """A store under test.

    Attributes:
        name: Shown in test ids and messages.
        open_store: Opens the store; for a ``shared_backend``, every call reopens the
            same database.
        url: The URL child processes open (``shared_backend`` only).
    """

    name: str
    open_store: Callable[[], Awaitable[PaymentStore]]
    url: str | None = None


@contextlib.asynccontextmanager
async def service_on(backend: Backend, **options: Any) -> AsyncIterator[PaymentService]:
    """A service with a local cache over a newly opened store; closed on exit."""
    options.setdefault("cache", LocalCache())
    service = PaymentService(await backend.open_store(), **options)
    async with service:
        yield service
