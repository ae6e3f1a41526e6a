"""The transactional outbox: each payment's events in order, leases, retries, parking
and relays in several processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paymentorch.clock import utc_now
from paymentorch.domain import NewPayment, PaymentEvent, uuid7
from paymentorch.outbox import OutboxRelay
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._workers import (
    commit_then_die,
    read_log,
    relay_then_die,
    relay_until_empty,
)
from paymentorch.testing.contract._helpers import (
    ADMIN,
    CUSTOMER,
    USER,
    _close,
    _created,
    _events,
    _shared,
)


class TestOutbox:
    """The outbox: ``claim_events`` leases each payment's oldest event; ``mark_failed``,
    ``parked_events`` and ``requeue_parked`` retry and park; relays in several
    processes lose nothing."""

    pytestmark = pytest.mark.asyncio

    async def test_outbox_keeps_each_payments_order(self, backend: Backend) -> None:
        """Only the oldest pending event of a payment can be claimed."""
        async with service_on(backend) as service:
            a = await service.create_payment(CUSTOMER, "1.00", actor=USER)
            b = await service.create_payment(CUSTOMER, "1.00", actor=USER)
            await service.confirm_payment(a.id, actor=ADMIN)
            now = utc_now()
            lease = now + timedelta(minutes=1)
            first = await service.store.claim_events(10, now=now, lease_until=lease)
            assert [(m.event.payment_id, m.event.type) for m in first] == [
                (a.id, "payment.created"),
                (b.id, "payment.created"),
            ]
            assert await service.store.claim_events(10, now=now, lease_until=lease) == []
            await service.store.mark_delivered([m.event.id for m in first])
            second = await service.store.claim_events(10, now=now, lease_until=lease)
            assert [(m.event.payment_id, m.event.type) for m in second] == [
                (a.id, "payment.confirmed")
            ]

    async def test_outbox_retry_park_and_requeue(self, backend: Backend) -> None:
        """Failed events wait for their retry time, park when told, and can be re-queued."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, "1.00", actor=USER)
            store = service.store
            now = utc_now()
            (message,) = await store.claim_events(
                10, now=now, lease_until=now + timedelta(seconds=30)
            )
            await store.mark_failed(
                [message.event.id], error="boom", retry_at=now + timedelta(hours=1)
            )
            assert await store.claim_events(10, now=now, lease_until=now) == []
            later = now + timedelta(hours=2)
            (again,) = await store.claim_events(10, now=later, lease_until=later)
            assert (again.attempts, again.last_error) == (1, "boom")
            await store.mark_failed([again.event.id], error="still", retry_at=None)
            stats = await store.outbox_stats()
            assert (stats.pending, stats.parked) == (0, 1)
            (parked,) = await store.parked_events()
            assert (parked.event.payment_id, parked.attempts) == (payment.id, 2)
            assert await store.requeue_parked() == 1
            (requeued,) = await store.claim_events(10, now=later, lease_until=later)
            assert requeued.attempts == 0
            await store.mark_delivered([requeued.event.id])
            assert (await store.outbox_stats()).pending == 0

    async def test_events_survive_a_crash_before_any_relay(self, backend: Backend) -> None:
        """A process commits payments and dies; a relay elsewhere delivers every event, in order."""
        _shared(backend)
        await _close(await backend.open_store())  # the schema exists before the child starts
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=commit_then_die, args=(backend.open_store, 30, 3))
        child.start()
        await asyncio.to_thread(child.join)
        assert child.exitcode == 0
        store = await backend.open_store()
        try:
            received: list[PaymentEvent] = []

            async def sink(events: Sequence[PaymentEvent]) -> None:
                received.extend(events)

            relay = OutboxRelay(store, sink, batch_size=7)
            while await relay.run_once():
                pass
        finally:
            await store.aclose()
        assert Counter(e.type for e in received) == Counter(
            {"payment.created": 30, "payment.confirmed": 10}
        )
        by_payment: dict[Any, list[str]] = {}
        for event in received:
            by_payment.setdefault(event.payment_id, []).append(event.type)
        assert len(by_payment) == 30
        for types in by_payment.values():
            assert types in (["payment.created"], ["payment.created", "payment.confirmed"])

    async def test_a_relay_killed_before_marking_redelivers(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        """A relay killed between the sink and the mark: its batch is delivered again, none lost."""
        _shared(backend)
        async with service_on(backend) as service:
            for _ in range(5):
                await service.create_payment(CUSTOMER, "1.00", actor=USER)
        log = str(tmp_path / "deliveries.log")
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=relay_then_die, args=(backend.open_store, log))
        child.start()
        await asyncio.to_thread(child.join)
        assert child.exitcode == 1
        first = read_log(log)
        assert len(first) == 5
        store = await backend.open_store()
        try:
            assert (await store.outbox_stats()).pending == 5  # the kill left them undelivered
            received: list[PaymentEvent] = []

            async def sink(events: Sequence[PaymentEvent]) -> None:
                received.extend(events)

            later = utc_now() + timedelta(hours=1)  # past the dead relay's lease
            relay = OutboxRelay(store, sink, clock=lambda: later)
            while await relay.run_once():
                pass
            assert (await store.outbox_stats()).pending == 0
        finally:
            await store.aclose()
        assert sorted(str(e.id) for e in received) == sorted(row[1] for row in first)

    async def test_three_relays_share_two_thousand_events(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        """Three relay processes deliver 2,000 events: none lost, each payment's in order."""
        _shared(backend)
        async with service_on(backend, cache=None) as service:
            created = await service.create_payments(
                [NewPayment(CUSTOMER, "1.00") for _ in range(1000)], actor=ADMIN
            )
            result = await service.confirm_payments([p.id for p in created], actor=ADMIN)
            assert len(result.confirmed) == 1000
        context = multiprocessing.get_context("spawn")
        logs = [str(tmp_path / f"relay-{i}.log") for i in range(3)]
        with context.Manager() as manager, context.Pool(3) as pool:
            barrier = manager.Barrier(3)
            counts = await asyncio.to_thread(
                pool.starmap,
                relay_until_empty,
                [(backend.open_store, log, barrier) for log in logs],
            )
        rows = sorted(row for log in logs for row in read_log(log))
        assert sum(counts) == len(rows)
        delivered = {row[1] for row in rows}
        assert len(delivered) == 2000
        first_seen: dict[tuple[str, str], int] = {}
        for at, _event_id, payment_id, kind in rows:
            first_seen.setdefault((payment_id, kind), at)
        for payment in created:
            pid = str(payment.id)
            assert first_seen[(pid, "payment.created")] < first_seen[(pid, "payment.confirmed")]
        duplicates = len(rows) - len(delivered)
        print(
            f"{backend.name}: 3 relays, {len(rows)} deliveries ({counts}), {duplicates} duplicates"
        )
        # Leases outlast these deliveries, so no event is handed to two relays.
        assert duplicates == 0
        assert all(count > 0 for count in counts), f"a relay got no work: {counts}"

    async def test_store_claims_are_leased(self, backend: Backend) -> None:
        """A claimed event is not handed out again until its lease lapses or it is delivered."""
        store = await backend.open_store()
        try:
            created = _created()
            await store.add(created)
            now = utc_now()
            (first,) = await store.claim_events(10, now=now, lease_until=now + timedelta(minutes=1))
            assert first.event.id == created.event.id
            during = now + timedelta(seconds=30)
            assert await store.claim_events(10, now=during, lease_until=during) == []
            after = now + timedelta(minutes=2)
            (again,) = await store.claim_events(
                10, now=after, lease_until=after + timedelta(minutes=1)
            )
            assert again.event.id == created.event.id
            await store.mark_delivered([created.event.id])
            later = now + timedelta(hours=1)
            assert await store.claim_events(10, now=later, lease_until=later) == []
            assert (await store.outbox_stats()).pending == 0
        finally:
            await store.aclose()

    async def test_store_requeues_the_parked_events_named(self, backend: Backend) -> None:
        """requeue_parked with ids re-queues just those; without, all the rest."""
        store = await backend.open_store()
        try:
            a, b = _created(), _created()
            await store.add(a)
            await store.add(b)
            now = utc_now()
            claimed = await store.claim_events(10, now=now, lease_until=now + timedelta(minutes=1))
            await store.mark_failed([m.event.id for m in claimed], error="down", retry_at=None)
            assert [m.event.id for m in await store.parked_events()] == [a.event.id, b.event.id]
            assert await store.requeue_parked([b.event.id, uuid7()]) == 1
            stats = await store.outbox_stats()
            assert (stats.pending, stats.parked) == (1, 1)
            (message,) = await store.claim_events(10, now=now, lease_until=now)
            assert (message.event.id, message.attempts) == (b.event.id, 0)
            assert await store.requeue_parked() == 1
            assert [e.id for e in await _events(store)] == [a.event.id, b.event.id]
        finally:
            await store.aclose()
