"""Both example apps on the infrastructure adapters their settings name: the Redis cache,
events to NATS, and encryption at rest."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from examples.common.settings import Settings
from tests import brokers
from tests.encryption import SETTING
from tests.examples.conftest import Client

CUSTOMER = "QQQQ-77777"
SECRET = "ZEBRA-SECRET-42"


def test_by_default_no_cache_on_sqlite_and_events_logged(client: Client, admin: str) -> None:
    reply = client("GET", "/api/infrastructure", token=admin)
    assert reply.status == 200
    assert reply.json == {"cache": "none", "events": "log", "encryption": None}
    assert client("GET", "/api/infrastructure").status == 401


def test_redis_nats_and_encryption_from_settings(
    make_client: Callable[..., Client], settings: Settings, admin: str
) -> None:
    """Created through the API: read back in clear, listed by customer, kept sealed in
    the database file, and published to a NATS stream by the app's relay."""
    brokers.require("Redis", brokers.REDIS)
    brokers.require("NATS", brokers.NATS)
    stream = f"T{uuid.uuid4().hex[:12]}"
    prefix = f"t{stream[1:]}"
    client = make_client(
        cache_url="redis://127.0.0.1:6379/0",
        sink_url=f"nats://127.0.0.1:4222?stream={stream}&subject_prefix={prefix}",
        encryption_key=SETTING,
    )
    info = client("GET", "/api/infrastructure", token=admin).json
    assert info == {"cache": "redis (local tier)", "events": "nats", "encryption": "k1"}
    body = {"customerId": CUSTOMER, "amount": "12.00", "metadata": {"note": SECRET}}
    created = client("POST", "/api/payments", json_body=body, token=admin)
    assert created.status == 201, created.text
    payment_id = created.json["id"]
    read = client("GET", f"/api/payments/{payment_id}", token=admin).json
    assert (read["customerId"], read["metadata"]) == (CUSTOMER, {"note": SECRET})
    listed = client("GET", f"/api/payments?customerId={CUSTOMER}", token=admin).json
    assert [p["id"] for p in listed["items"]] == [payment_id]
    stored = Path(settings.url.split(":///", 1)[1])
    kept = b"".join(p.read_bytes() for p in (stored, Path(f"{stored}-wal")) if p.exists())
    assert CUSTOMER.encode() not in kept
    assert SECRET.encode() not in kept
    published = asyncio.run(_published(stream, prefix))
    assert [(m["payment_id"], m["type"]) for m in published] == [(payment_id, "payment.created")]
    assert published[0]["payment"]["customer_id"] == CUSTOMER


async def _published(stream: str, prefix: str) -> list[dict[str, object]]:
    import nats

    deadline = time.monotonic() + 15
    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        jetstream = client.jetstream()
        while True:
            try:
                if (await jetstream.stream_info(stream)).state.messages:
                    break
            except nats.js.errors.NotFoundError:
                pass  # the relay has not created it yet
            assert time.monotonic() < deadline, "the app's relay published nothing"
            await asyncio.sleep(0.1)  # polling the relay's progress
    finally:
        await client.close()
    return await brokers.read_nats(brokers.NATS[1], stream, prefix)
