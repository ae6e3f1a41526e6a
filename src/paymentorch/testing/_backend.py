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
    """A store under test, and how to open it.

    Attributes:
        name: Shown in messages.
        open_store: Opens the store; every call of one ``Backend`` opens the same data.
        shared: Whether several processes can open the store at once (a database
            file or server). The multi-process tests run only then, in child processes
            started with ``spawn``, so ``open_store`` must be picklable: a module-level
            function or a ``functools.partial`` of one, not a lambda.
        url: The URL the store was opened from, if any; the suite itself never uses it.
    """

    name: str
    open_store: Callable[[], Awaitable[PaymentStore]]
    shared: bool = False
    url: str | None = None


@contextlib.asynccontextmanager
async def service_on(backend: Backend, **options: Any) -> AsyncIterator[PaymentService]:
    """A service with a local cache over a newly opened store; closed on exit, after
    ``verify`` found the books, audit trails and events it left in agreement."""
    options.setdefault("cache", LocalCache())
    service = PaymentService(await backend.open_store(), **options)
    async with service:
        yield service
        report = await service.verify()
        assert report.ok, f"verify on {backend.name}: {report.problems[:5]}"
