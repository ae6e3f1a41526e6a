"""The outbox relay and the in-process event bus."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest

import paymentorch as po
from paymentorch.adapters import InMemoryPaymentStore
from paymentorch.clock import utc_now
from paymentorch.testing import Backend, service_on

USER = po.Actor("user-1", roles={po.Role.USER})
ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})


class FlakySink:
    """Fails the first ``failures`` calls, then records what it receives."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.received: list[po.PaymentEvent] = []

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("broker down")
        self.received.extend(events)


async def test_relay_delivers_each_payments_events_in_order(backend: Backend) -> None:
    """Every event arrives once, each payment's in the order it happened."""
    async with service_on(backend) as service:
        payments = [await service.create_payment("ABCD-12345", "1", actor=USER) for _ in range(5)]
        for payment in payments[:3]:
            await service.confirm_payment(payment.id, actor=ADMIN)
        sink = FlakySink(0)
        relay = po.OutboxRelay(service.store, sink, batch_size=2)
        total = 0
        while delivered := await relay.run_once():
            total += delivered
        assert total == 8
        for payment in payments:
            types = [e.type for e in sink.received if e.payment_id == payment.id]
            expected = ["payment.created"] + (
                ["payment.confirmed"] if payment in payments[:3] else []
            )
            assert types == expected
        assert len({e.id for e in sink.received}) == 8


async def test_failing_sink_retries_with_backoff_then_recovers(backend: Backend) -> None:
    """A sink that fails for a while loses nothing: attempts grow, then all is delivered."""
    now = [utc_now()]
    async with service_on(backend) as service:
        for _ in range(3):
            await service.create_payment("ABCD-12345", "1", actor=USER)
        sink = FlakySink(failures=3)
        relay = po.OutboxRelay(
            service.store, sink, backoff=timedelta(seconds=10), clock=lambda: now[0]
        )
        for attempt in range(1, 4):
            assert await relay.run_once() == 0
            assert await relay.run_once() == 0  # nothing is due before its back-off passes
            now[0] += relay.retry_delay(attempt) + timedelta(milliseconds=1)
        assert relay.retry_delay(1) == timedelta(seconds=10)
        assert relay.retry_delay(3) == timedelta(seconds=40)
        assert await relay.run_once() == 3
        assert len(sink.received) == 3
        assert (await service.store.outbox_stats()).pending == 0


async def test_events_are_parked_after_max_attempts(backend: Backend) -> None:
    """After max_attempts an event is parked, counted, listable and can be re-queued."""
    now = [utc_now()]
    async with service_on(backend) as service:
        payment = await service.create_payment("ABCD-12345", "1", actor=USER)
        sink = FlakySink(failures=2)
        relay = po.OutboxRelay(service.store, sink, max_attempts=2, clock=lambda: now[0])
        await relay.run_once()
        now[0] += timedelta(minutes=10)
        await relay.run_once()
        stats = await service.store.outbox_stats()
        assert (stats.pending, stats.parked) == (0, 1)
        (parked,) = await service.store.parked_events()
        assert (parked.event.payment_id, parked.attempts) == (payment.id, 2)
        assert "broker down" in (parked.last_error or "")
        assert (await service.health()).status == "degraded"
        assert await service.store.requeue_parked([parked.event.id]) == 1
        assert await relay.run_once() == 1
        assert [e.id for e in sink.received] == [parked.event.id]


async def test_run_loops_until_stopped() -> None:
    """run() keeps delivering new events until its stop event is set."""
    async with await po.open_service("memory://") as service:
        bus = po.InMemoryEventBus()
        seen: list[str] = []
        stop = asyncio.Event()

        def on_event(event: po.PaymentEvent) -> None:
            seen.append(event.type)
            if len(seen) == 2:
                stop.set()

        bus.subscribe("*", on_event)
        relay = po.OutboxRelay(service.store, bus, poll_interval=0.01)
        runner = asyncio.create_task(relay.run(stop))
        payment = await service.create_payment("ABCD-12345", "1", actor=USER)
        await service.confirm_payment(payment.id, actor=ADMIN)
        await asyncio.wait_for(runner, timeout=10)
        assert seen == ["payment.created", "payment.confirmed"]


async def test_bus_routes_by_pattern() -> None:
    """Handlers see exactly the event types they subscribed to; async handlers are awaited."""
    async with await po.open_service("memory://") as service:
        bus = po.InMemoryEventBus()
        confirmed: list[str] = []
        everything: list[str] = []

        async def on_confirmed(event: po.PaymentEvent) -> None:
            confirmed.append(event.payment["status"])

        bus.subscribe("payment.confirmed", on_confirmed)
        unsubscribe = bus.subscribe("payment.*", lambda e: everything.append(e.type))
        payment = await service.create_payment("ABCD-12345", "1", actor=USER)
        await service.confirm_payment(payment.id, actor=ADMIN)
        relay = po.OutboxRelay(service.store, bus)
        while await relay.run_once():
            pass
        assert confirmed == ["Confirmed"]
        assert everything == ["payment.created", "payment.confirmed"]
        unsubscribe()
        other = await service.create_payment("ABCD-12345", "1", actor=USER)
        await relay.run_once()
        assert everything == ["payment.created", "payment.confirmed"]
        assert other.status is po.PaymentStatus.PENDING


def test_relay_refuses_nonsense_settings() -> None:
    """A batch size or attempt limit below one is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        po.OutboxRelay(InMemoryPaymentStore(), FlakySink(0), batch_size=0)


async def test_backoff_is_capped_however_many_attempts() -> None:
    """After dozens of failures the delay stays at max_backoff, and the relay keeps going."""
    now = [utc_now()]
    async with await po.open_service("memory://") as service:
        await service.create_payment("ABCD-12345", "1", actor=USER)
        relay = po.OutboxRelay(
            service.store, FlakySink(failures=10**6), max_attempts=100, clock=lambda: now[0]
        )
        assert relay.retry_delay(49) == relay.max_backoff
        assert relay.retry_delay(10**9) == relay.max_backoff
        for _ in range(60):
            assert await relay.run_once() == 0
            now[0] += relay.max_backoff
        (message,) = await service.store.claim_events(1, now=now[0], lease_until=now[0])
        assert message.attempts == 60
