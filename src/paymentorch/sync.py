"""The blocking twin of ``PaymentService``, for Flask, Django, scripts and threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

from paymentorch._open import open_service
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


class _LoopThread:
    """An event loop running on a private daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="paymentorch-sync", daemon=True
        )
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        # The caller's correlation id lives in the caller's context; carry it across.
        correlation_id = current_correlation_id()

        async def call() -> T:
            with correlation(correlation_id):
                return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncPaymentService:
    """``PaymentService`` with blocking methods; safe to share between threads.

    The async service runs on an event loop on a private thread; every call hops to it
    and waits. Close it (or use ``with``) to stop that thread and close the store.
    """

    def __init__(self, service: PaymentService, runner: _LoopThread) -> None:
        self._service = service
        self._runner = runner
        self._closed = False

    @property
    def service(self) -> PaymentService:
        """The async service behind this one (it lives on the private loop)."""
        return self._service

    @property
    def store(self) -> PaymentStore:
        """The backend behind the service."""
        return self._service.store

    def run(self, coroutine_function: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``coroutine_function()`` on the service's loop and wait for its result."""
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
        ids = list(payment_ids)
        return self.run(lambda: self._service.confirm_payments(ids, actor=actor))

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
    runner = _LoopThread()
    try:
        service = runner.run(lambda: open_service(url, **options))
    except BaseException:
        runner.stop()
        raise
    return SyncPaymentService(service, runner)
