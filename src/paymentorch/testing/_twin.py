"""The contract suite for blocking stores: each one seen through an async view."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from paymentorch._sync.ports import SyncPaymentStore


class AsyncView:
    """A blocking store (the twin's, or your own) with the async methods of a ``PaymentStore``.

    Each call runs the blocking method directly, so concurrent tasks take turns: the
    suite's races still prove one winner, through the store's own guards. ``aclose``
    calls ``close``.
    """

    def __init__(self, store: SyncPaymentStore) -> None:
        self.store = store
        self.backend = store.backend

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.store, "close" if name == "aclose" else name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


async def open_async_view(
    open_sync_store: Callable[..., SyncPaymentStore], *args: Any, **kwargs: Any
) -> AsyncView:
    """``AsyncView(open_sync_store(*args, **kwargs))``: a factory for ``Backend``.

    ``functools.partial(open_async_view, opener, url)`` pickles when ``opener`` is a
    module-level function, so shared blocking stores get the multi-process tests too.
    """
    return AsyncView(open_sync_store(*args, **kwargs))
