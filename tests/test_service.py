"""Service behaviour beyond the store contract: authorization, cache, threads, input checks."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

import paymentorch as po
from paymentorch.adapters import InMemoryPaymentStore
from paymentorch.domain import Payment
from paymentorch.testing import Backend
from tests import children

USER = po.Actor("user-1", roles={po.Role.USER})
ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})
NOBODY = po.Actor("guest")


class CountingStore(InMemoryPaymentStore):
    """The real in-memory store, counting how often payments are read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, payment_id: UUID) -> Payment | None:
        self.reads += 1
        return await super().get(payment_id)


class BrokenCache:
    """A cache whose every call raises, as a cache server that went away would."""

    async def get(self, payment_id: UUID) -> Payment | None:
        raise ConnectionError("cache down")

    async def set(self, payment: Payment) -> None:
        raise ConnectionError("cache down")

    async def delete(self, payment_id: UUID) -> None:
        raise ConnectionError("cache down")


async def test_permission_denied_changes_nothing() -> None:
    """An actor without the role gets PermissionDenied; no payment, entry or event changes."""
    async with await po.open_service("memory://") as service:
        with pytest.raises(po.PermissionDenied) as caught:
            await service.create_payment("ABCD-12345", "1.00", actor=NOBODY)
        assert (caught.value.actor_id, caught.value.action) == ("guest", "create")
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        for call in (
            service.confirm_payment(payment.id, actor=USER),
            service.fail_payment(payment.id, reason="x", actor=USER),
            service.cancel_payment(payment.id, actor=USER),
            service.confirm_payments([payment.id], actor=USER),
            service.create_payments([po.NewPayment("ABCD-12345", "1")], actor=USER),
        ):
            with pytest.raises(po.PermissionDenied):
                await call
        assert await service.get_payment(payment.id) == payment
        assert len(await service.audit_trail(payment.id)) == 1
        assert await service.count_payments() == 1
        assert (await service.store.outbox_stats()).pending == 1


async def test_cache_hit_does_not_touch_the_store() -> None:
    """After a create, reads are served from the cache until a change updates it."""
    store = CountingStore()
    async with po.PaymentService(store, cache=po.LocalCache()) as service:
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        for _ in range(5):
            assert await service.get_payment(payment.id) == payment
        assert store.reads == 0
        confirmed = await service.confirm_payment(payment.id, actor=ADMIN)
        assert await service.get_payment(payment.id) == confirmed
        assert store.reads == 0


async def test_cache_never_serves_the_old_state_after_a_change() -> None:
    """A change made elsewhere is seen once this service's own change attempt fails."""
    store = InMemoryPaymentStore()
    here = po.PaymentService(store, cache=po.LocalCache())
    elsewhere = po.PaymentService(store, cache=po.LocalCache())
    payment = await here.create_payment("ABCD-12345", "1.00", actor=USER)
    await elsewhere.cancel_payment(payment.id, actor=ADMIN)
    with pytest.raises(po.InvalidTransition) as caught:
        await here.confirm_payment(payment.id, actor=ADMIN)
    assert caught.value.status is po.PaymentStatus.CANCELLED
    assert (await here.get_payment(payment.id)).status is po.PaymentStatus.CANCELLED


async def test_a_refund_a_store_wrote_without_saying_which_is_read_back() -> None:
    """A store that writes a refund in one step but does not return it (a store written
    before ``Stepped.operation``) still answers the refund it wrote, read back; one that
    does not keep it raises StoreError."""
    import attrs

    from paymentorch.domain.transitions import Stepped, Transition

    class Silent(InMemoryPaymentStore):
        keeps = True

        async def transition(self, move: Transition) -> Stepped:
            return attrs.evolve(await super().transition(move), operation=None)

        async def operations(self, payment_id: UUID) -> list[po.Operation]:
            return await super().operations(payment_id) if self.keeps else []

    store = Silent()
    service = po.PaymentService(store, cache=None)
    payment = await service.create_payment("ABCD-12345", "10.00", actor=USER)
    await service.confirm_payment(payment.id, actor=ADMIN)
    part = await service.refund_payment(payment.id, "4.00", actor=ADMIN)
    rest = await service.refund_payment(payment.id, actor=ADMIN)
    assert [str(part.amount), str(rest.amount)] == ["4.00", "6.00"]
    assert await store.operations(payment.id) == [part, rest]
    other = await service.create_payment("ABCD-12345", "10.00", actor=USER)
    await service.confirm_payment(other.id, actor=ADMIN)
    store.keeps = False
    with pytest.raises(po.StoreError, match="does not keep it"):
        await service.refund_payment(other.id, actor=ADMIN)


async def test_local_cache_keeps_the_newest_version() -> None:
    """A late write of an older version does not replace a newer one."""
    cache = po.LocalCache()
    async with await po.open_service("memory://", cache=None) as service:
        old = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        new = await service.confirm_payment(old.id, actor=ADMIN)
    await cache.set(new)
    await cache.set(old)
    assert await cache.get(old.id) == new
    await cache.delete(old.id)
    assert await cache.get(old.id) is None


async def test_a_failing_cache_is_bypassed(caplog: pytest.LogCaptureFixture) -> None:
    """Every operation still works when the cache raises; the failure is logged."""
    async with await po.open_service("memory://", cache=BrokenCache()) as service:
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        assert (await service.confirm_payment(payment.id, actor=ADMIN)).version == 2
        assert (await service.get_payment(payment.id)).status is po.PaymentStatus.CONFIRMED
    assert any("cache" in r.message for r in caplog.records)


def test_twenty_threads_confirm_through_the_sync_twin(backend: Backend) -> None:
    """20 threads confirm one payment: one winner, 19 InvalidTransition, one entry, one event."""
    with po.open_sync_service(backend.url or "memory://", cache=None) as service:
        payment = service.create_payment("ABCD-12345", "1.00", actor=USER)
        barrier = threading.Barrier(20)
        outcomes: list[str] = []

        def confirm() -> None:
            barrier.wait()
            try:
                service.confirm_payment(payment.id, actor=ADMIN)
                outcomes.append("won")
            except po.InvalidTransition:
                outcomes.append("lost")

        threads = [threading.Thread(target=confirm) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(outcomes) == Counter({"won": 1, "lost": 19})
        assert [e.action for e in service.audit_trail(payment.id)] == ["created", "confirmed"]
        health = service.health()
        assert health.checks["outbox"]["pending"] == 2


def test_sync_twin_carries_the_correlation_id(backend: Backend) -> None:
    """A correlation id set in the calling thread tags what the sync twin writes."""
    with po.open_sync_service(backend.url or "memory://") as service, po.correlation("req-42"):
        payment = service.create_payment("ABCD-12345", "1.00", actor=USER)
        (entry,) = service.audit_trail(payment.id)
    assert entry.correlation_id == "req-42"


async def test_invalid_ids_and_reasons_are_listed_together() -> None:
    """Bad ids and reasons raise one ValidationError naming each."""
    async with await po.open_service("memory://") as service:
        with pytest.raises(po.ValidationError) as caught:
            await service.fail_payment("nope", reason="", actor=ADMIN)
        assert [e.field for e in caught.value.errors] == ["payment_id", "reason"]
        with pytest.raises(po.ValidationError) as caught:
            await service.confirm_payments(["x", "y"], actor=ADMIN)
        assert [e.field for e in caught.value.errors] == ["payment_ids[0]", "payment_ids[1]"]
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        with pytest.raises(po.ValidationError):
            await service.fail_payment(payment.id, reason="x" * 501, actor=ADMIN)
        with pytest.raises(po.ValidationError):
            await service.cancel_payment(payment.id, reason="\x00", actor=ADMIN)
        assert (await service.get_payment(str(payment.id))).status is po.PaymentStatus.PENDING


async def test_bulk_create_lists_every_bad_item() -> None:
    """create_payments validates every item first and names each by index."""
    async with await po.open_service("memory://") as service:
        with pytest.raises(po.ValidationError) as caught:
            await service.create_payments(
                [
                    po.NewPayment("ABCD-12345", "1.00", idempotency_key="a"),
                    po.NewPayment("bad", "1.00"),
                    po.NewPayment("ABCD-12345", 2.5),  # type: ignore[arg-type]
                    po.NewPayment("ABCD-12345", "1.00", idempotency_key="a"),
                ],
                actor=ADMIN,
            )
        assert [e.field for e in caught.value.errors] == [
            "items[1].customer_id",
            "items[2].amount",
            "items[3].idempotency_key",
        ]
        assert await service.count_payments() == 0


async def test_key_retention_is_at_least_a_day() -> None:
    """Purging keys younger than 24 hours is refused."""
    async with await po.open_service("memory://") as service:
        with pytest.raises(po.ValidationError):
            await service.purge_idempotency_keys(timedelta(hours=1))


async def test_default_currency_is_checked() -> None:
    """An unknown default currency is refused when the service is built."""
    with pytest.raises(po.ValidationError):
        await po.open_service("memory://", default_currency="ABC")
    async with await po.open_service("memory://", default_currency="jpy") as service:
        payment = await service.create_payment("ABCD-12345", 1000, actor=USER)
        assert (payment.currency, payment.amount) == ("JPY", Decimal(1000))


async def test_unknown_url_scheme() -> None:
    """A URL with an unknown scheme names the schemes that exist."""
    with pytest.raises(po.ValidationError, match="postgresql"):
        await po.open_service("mysql://localhost/db")


async def test_injected_clock_sets_times() -> None:
    """Times come from the injected clock."""
    from datetime import UTC, datetime

    at = datetime(2030, 5, 6, tzinfo=UTC)
    async with await po.open_service("memory://", clock=lambda: at) as service:
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        assert payment.created_at == payment.updated_at == at


async def test_a_manual_clock_keeps_utc_whatever_it_starts_in(tmp_path: Path) -> None:
    """A ManualClock started in another time zone tells the same instant in UTC, so a
    payment reads back as it was returned, whether a store kept it as written or read
    it from disk."""
    from datetime import UTC, datetime, timezone

    from paymentorch.clock import ManualClock

    start = datetime(2030, 5, 6, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    clock = ManualClock(start)
    assert clock() == start
    assert clock().tzinfo is UTC
    async with await po.open_service(f"sqlite:///{tmp_path}/c.db", clock=clock) as service:
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        confirmed = await service.confirm_payment(payment.id, actor=ADMIN)
        assert (await service.get_payment(payment.id)).to_dict() == confirmed.to_dict()


async def test_health_degrades_when_events_lag() -> None:
    """An outbox event older than the threshold, or a parked one, makes health degraded."""
    from paymentorch.clock import utc_now

    now = [utc_now()]
    async with await po.open_service(
        "memory://", outbox_lag_threshold=timedelta(seconds=30), clock=lambda: now[0]
    ) as service:
        await service.create_payment("ABCD-12345", "1.00", actor=USER)
        assert (await service.health()).status == "ok"
        now[0] += timedelta(seconds=31)
        report = await service.health()
        assert report.status == "degraded"
        assert report.to_dict()["checks"]["outbox"]["oldest_pending_age_s"] == 31.0
        (message,) = await service.store.claim_events(1, now=now[0], lease_until=now[0])
        await service.store.mark_failed([message.event.id], error="x", retry_at=None)
        now[0] -= timedelta(seconds=31)
        assert (await service.health()).status == "degraded"  # a parked event


async def test_local_cache_expires() -> None:
    """An entry past its time to live is not served."""
    async with await po.open_service("memory://", cache=None) as service:
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
    cache = po.LocalCache(ttl=0)
    await cache.set(payment)
    assert await cache.get(payment.id) is None
    assert len(cache) == 0


async def test_bulk_create_leaves_the_garbage_collector_alone() -> None:
    """A large batch never switches off the process-wide cyclic collector."""
    import gc

    seen: list[bool] = []

    class Watching(InMemoryPaymentStore):
        async def add_many(self, changes: Any) -> None:
            seen.append(gc.isenabled())
            await super().add_many(changes)

    async with po.PaymentService(Watching()) as service:
        await service.create_payments(
            [po.NewPayment("ABCD-12345", "1.00") for _ in range(1000)], actor=ADMIN
        )
    assert seen == [True]
    assert gc.isenabled()


async def test_a_change_in_another_process_is_read_at_once(shared_backend: Backend) -> None:
    """With default options, B reads, A (another process) confirms, B reads Confirmed."""
    assert shared_backend.url is not None
    async with await po.open_service(shared_backend.url) as service:
        payment = await service.create_payment("ABCD-12345", "1.00", actor=USER)
        assert (await service.get_payment(payment.id)).status is po.PaymentStatus.PENDING
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            status = await asyncio.to_thread(
                pool.apply, children.confirm, (shared_backend.url, str(payment.id))
            )
        assert status == "Confirmed"
        assert (await service.get_payment(payment.id)).status is po.PaymentStatus.CONFIRMED


async def test_only_memory_caches_by_default(tmp_path: Path) -> None:
    """open_service puts a LocalCache in front of memory:// and no cache in front of SQL."""
    async with await po.open_service("memory://") as service:
        assert isinstance(service.cache, po.LocalCache)
    async with await po.open_service(f"sqlite:///{tmp_path / 'p.db'}") as service:
        assert service.cache is None


async def test_creation_periods_are_checked() -> None:
    """A naive datetime or a period that ends before it starts is a ValidationError."""
    from datetime import UTC, datetime

    async with await po.open_service("memory://") as service:
        with pytest.raises(po.ValidationError) as naive:
            await service.list_payments(created_from=datetime(2026, 1, 1))  # noqa: DTZ001
        assert [e.field for e in naive.value.errors] == ["created_from"]
        later, earlier = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        with pytest.raises(po.ValidationError) as backwards:
            await service.summarize_payments(created_from=later, created_to=earlier)
        assert [e.code for e in backwards.value.errors] == ["range"]
