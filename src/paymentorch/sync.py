"""The blocking twin of ``PaymentService``, for Flask, Django, scripts and threads."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from uuid import UUID

from paymentorch._open import loop_bound, open_service
from paymentorch.domain import (
    Actor,
    AuditEntry,
    NewPayment,
    Payment,
    PaymentStatus,
    correlation,
    current_correlation_id,
)
from paymentorch.domain.results import BulkResult, HealthReport, Page
from paymentorch.ports import PaymentStore
from paymentorch.service import PaymentService

T = TypeVar("T")

# Bumped in a child after fork(): a twin notices on its next call that its threads, loops
# and connections belong to the parent, and starts anew.
_generation = 0
_fork_lock = threading.Lock()
# What a child inherited from its parent. Kept referenced so that it is never finalized
# here: closing an inherited connection would end the parent's session.
_INHERITED: list[object] = []


def _after_fork_in_child() -> None:
    global _generation, _fork_lock  # noqa: PLW0603 - process-wide by nature
    _generation += 1
    _fork_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Runner(Protocol):
    def run(self, make: Callable[[], Awaitable[T]]) -> T: ...

    def stop(self) -> None: ...


class _LoopThread:
    """One event loop on a private daemon thread; every call hops to it and back.

    For backends bound to the loop that opened them (a PostgreSQL pool).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="paymentorch-sync", daemon=True
        )
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        # The caller's correlation id lives in the caller's context; carry it across.
        correlation_id = current_correlation_id()
        if correlation_id is None:
            return asyncio.run_coroutine_threadsafe(_await(make), self.loop).result()

        async def call() -> T:
            with correlation(correlation_id):
                return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _ThreadLoop:
    """A thread's own event loop, closed when the thread ends (its thread-local goes)."""

    __slots__ = ("__weakref__", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        weakref.finalize(self, self.loop.close)


class _CallerLoops:
    """An event loop per calling thread: calls run where they are made, with no hop.

    For backends that any loop may use (memory, SQLite): a hop to another thread costs
    more than a SQLite transaction, so the blocking twin runs the service right in the
    calling thread, on that thread's own loop. A thread's loop is closed when the thread
    ends, so a server that starts a thread per request leaks nothing.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._loops: weakref.WeakSet[_ThreadLoop] = weakref.WeakSet()
        self._lock = threading.Lock()

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        mine: _ThreadLoop | None = getattr(self._local, "loop", None)
        if mine is None:
            mine = self._local.loop = _ThreadLoop()
            with self._lock:
                self._loops.add(mine)
        return mine.loop.run_until_complete(_await(make))

    def stop(self) -> None:
        with self._lock:
            loops, self._loops = list(self._loops), weakref.WeakSet()
        for mine in loops:
            if not mine.loop.is_running():
                mine.loop.close()


async def _await(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


class SyncPaymentService:
    """``PaymentService`` with blocking methods; safe to share between threads.

    On memory and SQLite, each call runs the async service in the calling thread, on an
    event loop of that thread's own. On PostgreSQL, whose pool belongs to one loop, the
    service runs on a loop on a private thread and every call hops to it and waits.
    Either way, do not call it from inside a running event loop (use the async service
    there). A twin opened before ``fork()`` (gunicorn ``--preload``) reopens its store
    in the child on first use, leaving the parent's connections alone; on ``memory://``
    the child keeps its copy of the data. Close it (or use ``with``) when done.
    """

    def __init__(self, url: str, **options: Any) -> None:
        """Open the service at ``url``; ``open_sync_service`` is the usual way in."""
        self._url = url
        self._options = options
        self._closed = False
        self._start(options)

    def _start(self, options: dict[str, Any]) -> None:
        runner: _Runner = _LoopThread() if loop_bound(self._url) else _CallerLoops()
        try:
            service = runner.run(lambda: open_service(self._url, **options))
        except BaseException:
            runner.stop()
            raise
        self._runner, self._service, self._generation = runner, service, _generation

    def _restart_in_child(self) -> None:
        with _fork_lock:
            if self._generation == _generation:
                return  # another thread of this child restarted it already
            _INHERITED.append((self._service, self._runner))
            if self._service.store.backend == "memory":
                self._runner, self._generation = _CallerLoops(), _generation
            else:
                self._start({**self._options, "create_schema": False})

    @property
    def service(self) -> PaymentService:
        """The async service behind this one (it lives on the private loop)."""
        return self._service

    @property
    def store(self) -> PaymentStore:
        """The backend behind the service."""
        return self._service.store

    def run(self, coroutine_function: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``coroutine_function()`` where this service runs its calls; wait for it."""
        if self._generation != _generation:
            self._restart_in_child()
        return self._runner.run(coroutine_function)

    def create_payment(
        self,
        customer_id: str,
        amount: Decimal | int | str,
        *,
        actor: Actor,
        currency: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Payment:
        """See ``PaymentService.create_payment``."""
        return self.run(
            lambda: self._service.create_payment(
                customer_id,
                amount,
                actor=actor,
                currency=currency,
                idempotency_key=idempotency_key,
                metadata=metadata,
            )
        )

    def create_payments(self, items: Sequence[NewPayment], *, actor: Actor) -> list[Payment]:
        """See ``PaymentService.create_payments``."""
        return self.run(lambda: self._service.create_payments(items, actor=actor))

    def get_payment(self, payment_id: UUID | str) -> Payment:
        """See ``PaymentService.get_payment``."""
        return self.run(lambda: self._service.get_payment(payment_id))

    def list_payments(
        self,
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """See ``PaymentService.list_payments``."""
        return self.run(
            lambda: self._service.list_payments(
                status=status, customer_id=customer_id, limit=limit, cursor=cursor
            )
        )

    def count_payments(
        self, *, status: PaymentStatus | str | None = None, customer_id: str | None = None
    ) -> int:
        """See ``PaymentService.count_payments``."""
        return self.run(
            lambda: self._service.count_payments(status=status, customer_id=customer_id)
        )

    def confirm_payment(self, payment_id: UUID | str, *, actor: Actor) -> Payment:
        """See ``PaymentService.confirm_payment``."""
        return self.run(lambda: self._service.confirm_payment(payment_id, actor=actor))

    def fail_payment(self, payment_id: UUID | str, *, reason: str, actor: Actor) -> Payment:
        """See ``PaymentService.fail_payment``."""
        return self.run(lambda: self._service.fail_payment(payment_id, reason=reason, actor=actor))

    def cancel_payment(
        self, payment_id: UUID | str, *, actor: Actor, reason: str | None = None
    ) -> Payment:
        """See ``PaymentService.cancel_payment``."""
        return self.run(
            lambda: self._service.cancel_payment(payment_id, actor=actor, reason=reason)
        )

    def confirm_payments(self, payment_ids: Iterable[UUID | str], *, actor: Actor) -> BulkResult:
        """See ``PaymentService.confirm_payments``."""
        return self.run(lambda: self._service.confirm_payments(payment_ids, actor=actor))

    def audit_trail(self, payment_id: UUID | str) -> list[AuditEntry]:
        """See ``PaymentService.audit_trail``."""
        return self.run(lambda: self._service.audit_trail(payment_id))

    def health(self) -> HealthReport:
        """See ``PaymentService.health``."""
        return self.run(self._service.health)

    def purge_idempotency_keys(self, older_than: timedelta = timedelta(hours=24)) -> int:
        """See ``PaymentService.purge_idempotency_keys``."""
        return self.run(lambda: self._service.purge_idempotency_keys(older_than))

    def close(self) -> None:
        """Close the store and stop the private loop thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.run(self._service.aclose)
        finally:
            self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_sync_service(url: str, **options: Any) -> SyncPaymentService:
    """The blocking twin of ``open_service``, with the same URL and options."""
    return SyncPaymentService(url, **options)
