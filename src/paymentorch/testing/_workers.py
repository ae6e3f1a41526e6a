"""Work done by child processes in the contract suite (importable under ``spawn``)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from paymentorch.domain import (
    Actor,
    AmountExceeded,
    CreditLimitExceeded,
    InvalidTransition,
    PaymentEvent,
    Role,
)
from paymentorch.domain.credit import CreditPolicy
from paymentorch.outbox import OutboxRelay
from paymentorch.ports import PaymentStore
from paymentorch.service import PaymentService
from paymentorch.testing.simulated import SimulatedProcessor

ADMIN = Actor("racer", roles={Role.ADMIN})
StoreFactory = Callable[[], Awaitable[PaymentStore]]


def race(
    open_store: StoreFactory, payment_ids: list[str], keys: list[str], barrier: Any
) -> dict[str, Any]:
    """Confirm every payment and create one payment per key, after all racers are ready."""
    return asyncio.run(_race(open_store, payment_ids, keys, barrier))


async def _race(
    open_store: StoreFactory, payment_ids: list[str], keys: list[str], barrier: Any
) -> dict[str, Any]:
    won: list[str] = []
    lost = 0
    created: list[str] = []
    async with PaymentService(await open_store()) as service:
        await asyncio.to_thread(barrier.wait)
        for pid in payment_ids:
            try:
                await service.confirm_payment(UUID(pid), actor=ADMIN)
                won.append(pid)
            except InvalidTransition:
                lost += 1
        for key in keys:
            payment = await service.create_payment(
                "RACE-00001", Decimal("10.00"), actor=ADMIN, idempotency_key=key
            )
            created.append(str(payment.id))
    return {"won": won, "lost": lost, "created": created}


def commit_then_die(open_store: StoreFactory, count: int, confirm_every: int) -> None:
    """Create ``count`` payments, confirm every ``confirm_every``-th, then die abruptly."""
    asyncio.run(_commit(open_store, count, confirm_every))
    os._exit(0)  # no close, no relay, no clean-up: as if the process crashed


async def _commit(open_store: StoreFactory, count: int, confirm_every: int) -> None:
    service = PaymentService(await open_store())
    for index in range(count):
        payment = await service.create_payment("CRSH-00001", Decimal("1.00"), actor=ADMIN)
        if index % confirm_every == 0:
            await service.confirm_payment(payment.id, actor=ADMIN)


def relay_then_die(open_store: StoreFactory, log: str) -> None:
    """Deliver one batch to ``log``, then die before the delivery is recorded."""
    asyncio.run(_relay_then_die(open_store, log))


async def _relay_then_die(open_store: StoreFactory, log: str) -> None:
    store = await open_store()

    async def sink(events: Sequence[PaymentEvent]) -> None:
        _append(log, events)
        os._exit(1)  # after the sink took the events, before mark_delivered

    await OutboxRelay(store, sink, batch_size=10).run_once()


def relay_until_empty(open_store: StoreFactory, log: str, barrier: Any) -> int:
    """Run a relay until the outbox is empty, logging every delivery; return its count."""
    return asyncio.run(_relay_until_empty(open_store, log, barrier))


async def _relay_until_empty(open_store: StoreFactory, log: str, barrier: Any) -> int:
    store = await open_store()

    async def sink(events: Sequence[PaymentEvent]) -> None:
        _append(log, events)
        # A broker's round trip. Without it, on a store whose writers queue for one lock
        # (SQLite), two relays can drain everything while the third waits its turn, and
        # the test would no longer show three relays sharing the work.
        await asyncio.sleep(0.001)

    relay = OutboxRelay(store, sink, batch_size=25)
    delivered = 0
    await asyncio.to_thread(barrier.wait)
    try:
        while True:
            done = await relay.run_once()
            delivered += done
            if done == 0:
                if (await store.outbox_stats()).pending == 0:
                    return delivered
                await asyncio.sleep(0.005)  # poll interval while other relays hold leases
    finally:
        await store.aclose()


def _append(log: str, events: Sequence[PaymentEvent]) -> None:
    with open(log, "a", encoding="utf-8") as file:
        for event in events:
            file.write(f"{time.monotonic_ns()} {event.id} {event.payment_id} {event.type}\n")
        file.flush()
        os.fsync(file.fileno())


def read_log(log: str) -> list[tuple[int, str, str, str]]:
    """Deliveries in a log written by ``_append``: (time, event id, payment id, type)."""
    try:
        with open(log, encoding="utf-8") as file:
            rows = [line.split() for line in file if line.strip()]
    except FileNotFoundError:
        return []
    return [(int(t), e, p, k) for t, e, p, k in rows]


def refund_race(
    open_store: StoreFactory, payment_id: str, amounts: list[str], barrier: Any
) -> dict[str, list[str]]:
    """Ask for each refund in turn, after all racers are ready; report what happened."""
    return asyncio.run(_refund_race(open_store, payment_id, amounts, barrier))


async def _refund_race(
    open_store: StoreFactory, payment_id: str, amounts: list[str], barrier: Any
) -> dict[str, list[str]]:
    refunded: list[str] = []
    refused: list[str] = []
    async with PaymentService(await open_store()) as service:
        await asyncio.to_thread(barrier.wait)
        for amount in amounts:
            try:
                operation = await service.refund_payment(payment_id, amount, actor=ADMIN)
                refunded.append(str(operation.amount))
            except AmountExceeded:
                refused.append(amount)
    return {"refunded": refunded, "refused": refused}


def credit_race(open_store: StoreFactory, count: int, limit: str, barrier: Any) -> list[str]:
    """Create ``count`` payments of 10.00 for one customer under a credit limit, after
    all racers are ready; return the outcome of each (``created`` or ``refused``)."""
    return asyncio.run(_credit_race(open_store, count, limit, barrier))


async def _credit_race(open_store: StoreFactory, count: int, limit: str, barrier: Any) -> list[str]:
    credit = CreditPolicy(limit=Decimal(limit), currency="USD")
    async with PaymentService(await open_store(), credit=credit) as service:
        await asyncio.to_thread(barrier.wait)

        async def one() -> str:
            try:
                await service.create_payment("LIMT-00001", Decimal("10.00"), actor=ADMIN)
            except CreditLimitExceeded:
                return "refused"
            return "created"

        return list(await asyncio.gather(*(one() for _ in range(count))))


def collect_race(open_store: StoreFactory, now: str, barrier: Any) -> int:
    """Run the plans tick's collection at ``now`` (ISO 8601) until nothing more is due,
    after all racers are ready; how many collections this process queued."""
    return asyncio.run(_collect_race(open_store, datetime.fromisoformat(now), barrier))


async def _collect_race(open_store: StoreFactory, now: datetime, barrier: Any) -> int:
    processor = SimulatedProcessor(latency=(0, 0))  # never called: collections are queued
    queued = 0
    async with PaymentService(await open_store(), processor=processor,
                              clock=lambda: now) as service:  # fmt: skip
        await asyncio.to_thread(barrier.wait)
        while found := await service.collect_installments():
            queued += found
    return queued
