"""The infrastructure adapters on PostgreSQL: events per second through each broker sink
(the relay against a hand-written publish loop), the Redis cache (reads per second
against no cache and a local one; commit-to-invalidation latency), and the lifecycle
with encryption at rest against without: ``.nox/bench/bin/python -m
benchmarks.infrastructure [--quick]``. Needs NATS, RabbitMQ and Redis on loopback."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paymentorch as po
from benchmarks.harness import ADMIN, Databases
from paymentorch.domain import NewPayment
from paymentorch.sinks import NatsSink, RabbitMQSink, encode_event

REDIS = "redis://127.0.0.1:6379/0"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"
KEYS = po.FieldEncryption.parse(po.FieldEncryption.generate())


class Captured:
    """A sink that keeps what it is given (to replay it to the baselines)."""

    def __init__(self) -> None:
        self.events: list[po.PaymentEvent] = []

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        self.events.extend(events)


async def _outbox(url: str, count: int) -> None:
    """``count`` events in the outbox: half the payments created, then confirmed."""
    async with await po.open_service(url) as service:
        items = [NewPayment(f"SINK-{i % 1000:05d}", "10.00") for i in range(count // 2)]
        made = await service.create_payments(items, actor=ADMIN)
        await service.confirm_payments([p.id for p in made], actor=ADMIN)


async def _relayed(url: str, sink: Any) -> float:
    """Events per second with the relay draining the outbox into ``sink``."""
    async with await po.open_service(url) as service:
        relay = po.OutboxRelay(service.store, sink, batch_size=100)
        delivered, start = 0, time.perf_counter()
        while moved := await relay.run_once():
            delivered += moved
        return delivered / (time.perf_counter() - start)


async def sinks(db: Databases, count: int) -> dict[str, Any]:
    """Each sink behind the relay, against publishing the same events one by one,
    waiting for each acknowledgement (what a hand-written loop does)."""
    import aio_pika
    import nats

    captured = Captured()
    url = db.fresh_postgres()
    await _outbox(url, count)
    await _relayed(url, captured)
    events = captured.events
    name = f"B{uuid.uuid4().hex[:10]}"
    figures: dict[str, Any] = {"events": len(events)}

    nats_sink = NatsSink(NATS, stream=name, subject_prefix=name.lower())
    url = db.fresh_postgres()
    await _outbox(url, count)
    relay_rate = await _relayed(url, nats_sink)
    client = await nats.connect(NATS)
    jetstream = client.jetstream()
    start = time.perf_counter()
    for event in events:  # the baseline: the same stream, new message ids
        await jetstream.publish(f"{name.lower()}.{event.type}", encode_event(event), stream=name)
    baseline = len(events) / (time.perf_counter() - start)
    await jetstream.delete_stream(name)
    await client.close()
    await nats_sink.aclose()
    figures["nats"] = {"relay_per_s": round(relay_rate), "publish_loop_per_s": round(baseline),
                       "ratio": round(relay_rate / baseline, 2)}  # fmt: skip

    rabbit_sink = RabbitMQSink(AMQP, exchange=name)
    url = db.fresh_postgres()
    await _outbox(url, count)
    relay_rate = await _relayed(url, rabbit_sink)
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    start = time.perf_counter()
    for event in events:
        message = aio_pika.Message(encode_event(event), message_id=str(event.id),
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)  # fmt: skip
        await exchange.publish(message, routing_key=event.type)
    baseline = len(events) / (time.perf_counter() - start)
    await channel.exchange_delete(name)
    await connection.close()
    await rabbit_sink.aclose()
    figures["rabbitmq"] = {"relay_per_s": round(relay_rate), "publish_loop_per_s": round(baseline),
                           "ratio": round(relay_rate / baseline, 2)}  # fmt: skip
    return figures


async def cache_reads(db: Databases, reads: int) -> dict[str, Any]:
    """``get_payment`` per second over 100 payments: no cache, LocalCache (one process
    only), RedisCache strict (``local=False``) and with its local tier."""
    url = db.fresh_postgres()
    async with await po.open_service(url, cache=None) as service:
        ids = [(await service.create_payment("READ-00001", "5.00", actor=ADMIN)).id
               for _ in range(100)]  # fmt: skip
    figures: dict[str, Any] = {}
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    kinds: dict[str, Any] = {
        "none": lambda: None,
        "local": po.LocalCache,
        "redis_strict": lambda: po.RedisCache(REDIS, namespace=namespace, local=False),
        "redis_local_tier": lambda: po.RedisCache(REDIS, namespace=namespace),
    }
    for name, make in kinds.items():
        cache = make()
        async with await po.open_service(url, cache=cache) as service:
            for pid in ids:  # warm
                await service.get_payment(pid)
            start = time.perf_counter()
            for index in range(reads):
                await service.get_payment(ids[index % len(ids)])
            figures[name] = round(reads / (time.perf_counter() - start))
        if isinstance(cache, po.RedisCache):
            await cache.aclose()
    figures["redis_local_tier_vs_local"] = round(figures["redis_local_tier"] / figures["local"], 2)
    figures["redis_strict_vs_none"] = round(figures["redis_strict"] / figures["none"], 2)
    return figures


async def invalidation_latency(db: Databases, changes: int) -> dict[str, float]:
    """From a change returning in one service to another cache's local tier having its
    invalidation, over a real Redis pub/sub connection (two caches in this process)."""
    url = db.fresh_postgres()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    writer, reader = (
        po.RedisCache(REDIS, namespace=namespace),
        po.RedisCache(REDIS, namespace=namespace),
    )
    waits: list[float] = []
    try:
        async with await po.open_service(url, cache=writer) as service:
            payment = await service.create_payment("LATE-00001", str(changes), actor=ADMIN)
            await service.confirm_payment(payment.id, actor=ADMIN)
            await reader.get(payment.id)
            while not reader._listening:  # noqa: ASYNC110 - the channel is up
                await asyncio.sleep(0.001)
            for _ in range(changes):
                await service.refund_payment(payment.id, "1", actor=ADMIN)
                began = time.perf_counter()  # the change has returned
                version = (await service.get_payment(payment.id)).version  # the writer's tier
                while reader._tier.floor(payment.id) < version:  # noqa: ASYNC110 - it arrived
                    await asyncio.sleep(0)
                waits.append(time.perf_counter() - began)
    finally:
        await writer.aclose()
        await reader.aclose()
    cuts = statistics.quantiles(waits, n=100)
    return {
        "changes": changes,
        "p50_ms": round(cuts[49] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
    }


async def encrypted_lifecycles(db: Databases, count: int, rounds: int) -> dict[str, Any]:
    """Create and confirm ``count`` payments (with two metadata pairs), with encryption
    at rest and without, alternating; medians of lifecycles per second."""
    plain, sealed = [], []
    for _ in range(rounds):
        for options, rates in (({}, plain), ({"encryption": KEYS}, sealed)):
            async with await po.open_service(db.fresh_postgres(), **options) as service:
                start = time.perf_counter()
                for index in range(count):
                    payment = await service.create_payment(
                        f"SEAL-{index % 1000:05d}", "42.00", actor=ADMIN,
                        metadata={"order": f"A-{index}", "channel": "web"},
                    )  # fmt: skip
                    await service.confirm_payment(payment.id, actor=ADMIN)
                rates.append(count / (time.perf_counter() - start))
    return {
        "lifecycles": count,
        "plain_per_s": round(statistics.median(plain)),
        "encrypted_per_s": round(statistics.median(sealed)),
        "ratio": round(statistics.median(s / p for s, p in zip(sealed, plain, strict=True)), 3),
    }


async def run(db: Databases, quick: bool) -> dict[str, Any]:
    """Every figure (small sizes when quick)."""
    return {
        "sinks": await sinks(db, 500 if quick else 5000),
        "cache_reads_per_s": await cache_reads(db, 2_000 if quick else 50_000),
        "invalidation": await invalidation_latency(db, 100 if quick else 1000),
        "encryption": await encrypted_lifecycles(db, 100 if quick else 2000, 1 if quick else 3),
    }


async def main(argv: list[str] | None = None) -> int:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.infrastructure")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    url = os.environ.get("PAYMENTORCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
    with tempfile.TemporaryDirectory() as folder:
        db = Databases(url, Path(folder))
        try:
            figures = await run(db, args.quick)
        finally:
            db.drop()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
