"""The machine's message brokers, for the sink tests: reachable, or a skip (a failure
when ``PAYMENTORCH_REQUIRE_SERVICES=1``, as in CI)."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest

NATS = ("127.0.0.1", 4222)
RABBITMQ = ("127.0.0.1", 5672)
REDIS = ("127.0.0.1", 6379)


def require(name: str, address: tuple[str, int]) -> None:
    """Skip (or fail, when services are required) unless ``address`` accepts connections."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(address) == 0:
            return
    message = f"{name} is not running on {address[0]}:{address[1]}"
    if os.environ.get("PAYMENTORCH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PAYMENTORCH_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


async def read_nats(port: int, stream: str, subject_prefix: str) -> list[dict[str, Any]]:
    """Every message in the stream, oldest first, with its ``Nats-Msg-Id``; then delete it."""
    import nats

    client = await nats.connect(f"nats://127.0.0.1:{port}")
    try:
        jetstream = client.jetstream()
        total = (await jetstream.stream_info(stream)).state.messages
        subscription = await jetstream.pull_subscribe(f"{subject_prefix}.>", stream=stream)
        found: list[dict[str, Any]] = []
        while len(found) < total:
            for message in await subscription.fetch(min(500, total - len(found)), timeout=5):
                body = json.loads(message.data)
                body["message_id"] = (message.headers or {}).get("Nats-Msg-Id")
                found.append(body)
                await message.ack()
        await jetstream.delete_stream(stream)
        return found
    finally:
        await client.close()


async def rabbitmq_queue(url: str, exchange: str) -> Any:
    """A queue bound to everything on ``exchange`` (declared as the sink declares it)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    declared = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"{exchange}-test", durable=True)
    await queue.bind(declared, routing_key="#")
    return connection, channel, queue


async def read_rabbitmq(opened: Any, exchange: str) -> list[dict[str, Any]]:
    """Every message in the test's queue, in queue order; then delete queue and exchange."""
    connection, channel, queue = opened
    found: list[dict[str, Any]] = []
    try:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            body = json.loads(message.body)
            body["message_id"] = message.message_id
            body["routing_key"] = message.routing_key
            found.append(body)
        await queue.delete(if_unused=False, if_empty=False)
        await channel.exchange_delete(exchange)
        return found
    finally:
        await connection.close()
