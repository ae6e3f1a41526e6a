"""RedisCache: the local tier's rules alone, then against Redis: two processes on one
database, strict and with the local tier, and a private Redis stopped and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

import paymentorch as po
from paymentorch.adapters import _wire
from paymentorch.adapters.redis import tiers
from paymentorch.sync import SyncRedisCache
from tests import brokers, children

ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})
REDIS = "redis://127.0.0.1:6379/0"


def _payment(version: int, payment_id: Any = None) -> po.Payment:
    now = datetime.now(UTC)
    return po.Payment(
        id=payment_id or uuid4(),
        customer_id="ABCD-12345",
        amount=Decimal("10.00"),
        currency="USD",
        status=po.PaymentStatus.CONFIRMED,
        created_at=now,
        updated_at=now,
        version=version,
        metadata={"order": "A-1"},
        captured_amount=Decimal("10.00"),
        refunded_amount=Decimal("1.00"),
        pending_refunds=Decimal("0.50"),
        has_plan=True,
    )


def test_the_wire_form_keeps_every_field() -> None:
    payment = _payment(7)
    assert _wire.decode(_wire.encode(payment)) == payment
    assert _wire.encode(payment).startswith("7|")


def test_the_local_tier_never_goes_back() -> None:
    """An offer older than an invalidation, or from a read begun before a clear, is
    refused; a clear keeps the floors."""
    tier = tiers.LocalTier(maxsize=10, ttl=60)
    old, new = _payment(1), None
    new = _payment(2, old.id)
    epoch = tier.epoch
    tier.apply(f"{old.id} 2")  # the change's invalidation arrives first
    tier.offer(old, epoch)  # then the slow read of version 1 offers what it found
    assert tier.get(old.id) is None
    assert tier.floor(old.id) == 2
    tier.offer(new, tier.epoch)
    assert tier.get(old.id) == new
    epoch = tier.epoch
    tier.apply("*")
    tier.offer(new, epoch)
    assert tier.get(old.id) is None
    assert tier.floor(old.id) == 2
    tier.apply(f"{old.id} -")
    assert tier.floor(old.id) == 2


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(po.MissingDriver, match=r"paymentorch\[redis\]"):
        po.RedisCache(REDIS)


async def test_versions_only_move_forward_and_others_hear_of_it() -> None:
    """A set never replaces a newer version; a change reaches another instance's local
    tier through the channel; a delete reaches it too."""
    brokers.require("Redis", brokers.REDIS)
    namespace = f"t{uuid4().hex[:8]}"
    one = po.RedisCache(REDIS, namespace=namespace)
    two = po.RedisCache(REDIS, namespace=namespace)
    try:
        first = _payment(1)
        await two.get(first.id)  # starts its listener
        await _until(lambda: two._listening)
        await one.set(_payment(3, first.id))
        await one.set(first)  # older: refused
        assert (await two.get(first.id)).version == 3  # type: ignore[union-attr]
        await one.set(_payment(4, first.id))
        await _until(lambda: two._tier.floor(first.id) == 4)
        assert (await two.get(first.id)).version == 4  # type: ignore[union-attr]
        await one.delete(first.id)
        await _until(lambda: two._tier.get(first.id) is None)
        assert await two.get(first.id) is None
    finally:
        await one.aclose()
        await two.aclose()


async def _until(condition: Any, seconds: float = 5) -> None:
    import asyncio

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the invalidation never arrived"
        await asyncio.sleep(0.001)  # polling for a message from another connection


@contextlib.contextmanager
def _private_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A redis-server of the test's own on a free port; yields its URL and a restarter."""
    binary = shutil.which("redis-server")
    if binary is None:
        brokers.require("redis-server", ("127.0.0.1", 0))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    state = {"process": None}

    def start() -> None:
        state["process"] = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)  # polling a starting server

    def stop() -> None:
        process = state["process"]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", (stop, start)
    finally:
        stop()


async def _changing(
    service: po.PaymentService, conn: Any, changes: int, outage: Any = None
) -> list[Any]:
    """Refund one payment ``changes`` times; after each, tell the reader the version and
    collect its answer. ``outage`` (stop, start) stops Redis for a fifth of the run."""
    payment = await service.create_payment("ABCD-12345", str(changes), actor=ADMIN)
    await service.confirm_payment(payment.id, actor=ADMIN)
    conn.send(str(payment.id))
    assert conn.recv() == "ready"
    answers = []
    for i in range(changes):
        if outage is not None and i == changes * 2 // 5:
            outage[0]()
        if outage is not None and i == changes * 3 // 5:
            outage[1]()
        await service.refund_payment(payment.id, "1", actor=ADMIN)
        version = (await service.get_payment(payment.id)).version
        conn.send((version, time.monotonic()))
        answer = conn.recv()
        answers.append((version, answer))
    conn.send(None)
    return answers


def _reader(url: str, redis_url: str, namespace: str, *, local: bool) -> tuple[Any, Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=children.read_through_redis, args=(url, redis_url, namespace, local, child)
    )
    process.start()
    return process, parent


async def _two_processes(
    tmp_path: Path, redis_url: str, *, local: bool, changes: int, outage: Any = None
) -> tuple[list[Any], int | None]:
    url = f"sqlite:///{tmp_path}/two.db"
    namespace = f"t{uuid4().hex[:8]}"
    cache = po.RedisCache(redis_url, namespace=namespace, local=local)
    try:
        async with await po.open_service(url, cache=cache, create_schema=True) as service:
            process, conn = _reader(url, redis_url, namespace, local=local)
            try:
                answers = await _changing(service, conn, changes, outage)
            finally:
                process.join(timeout=30)
    finally:
        await cache.aclose()
    return answers, process.exitcode


def _verdict(answers: list[Any]) -> dict[str, Any]:
    """Every answer complete, none stale, no error; the figures."""
    broken = [a for _, a in answers if len(a) != 4]
    assert broken == [], f"the reader stopped: {broken[0]}"
    stale = [(v, a[0]) for v, a in answers if a[0] != v]
    assert stale == [], f"{len(stale)} stale reads, such as {stale[0]}"
    assert sum(a[3] for _, a in answers) == 0, "an error reached the reader"
    waits = sorted(a[1] for _, a in answers)
    return {
        "changes": len(answers),
        "reads of the version before": sum(a[2] - 1 for _, a in answers),
        "p50 ms": round(waits[len(waits) // 2] * 1000, 2),
        "p99 ms": round(waits[int(len(waits) * 0.99)] * 1000, 2),
    }


@pytest.mark.parametrize("local", [False, True], ids=["strict", "local"])
async def test_two_processes_never_read_stale(tmp_path: Path, local: bool) -> None:
    """1,000 changes in this process; after each, the other process reads. Strict: it
    reads exactly that version every time. With the local tier: no read is older than
    the one before (the reader checks), and each change is seen once its invalidation
    arrives."""
    brokers.require("Redis", brokers.REDIS)
    answers, exitcode = await _two_processes(tmp_path, REDIS, local=local, changes=1000)
    figures = _verdict(answers)
    assert exitcode == 0
    print(f"two processes, {'local tier' if local else 'strict'}: {figures}")


@pytest.mark.parametrize("local", [False, True], ids=["strict", "local"])
async def test_redis_stopped_and_restarted_reaches_no_caller(tmp_path: Path, local: bool) -> None:
    """A private Redis is killed at 40% of 500 changes and restarted at 60%: neither
    process sees an error, and every read is as fresh as before."""
    with _private_redis(tmp_path) as (redis_url, outage):
        answers, exitcode = await _two_processes(
            tmp_path, redis_url, local=local, changes=500, outage=outage
        )
    figures = _verdict(answers)
    assert exitcode == 0
    print(f"Redis restarted, {'local tier' if local else 'strict'}: {figures}")


async def test_the_blocking_service_shares_the_cache_with_async_ones(tmp_path: Path) -> None:
    """A change through ``SyncPaymentService`` with ``SyncRedisCache`` reaches an async
    ``RedisCache`` on the same namespace, and the other way round."""
    brokers.require("Redis", brokers.REDIS)
    url = f"sqlite:///{tmp_path}/twin.db"
    namespace = f"t{uuid4().hex[:8]}"
    blocking = SyncRedisCache(REDIS, namespace=namespace)
    cache = po.RedisCache(REDIS, namespace=namespace)
    try:
        with po.open_sync_service(url, cache=blocking, create_schema=True) as twin:
            payment = twin.create_payment("ABCD-12345", "5.00", actor=ADMIN)
            async with await po.open_service(url, cache=cache) as service:
                assert (await service.get_payment(payment.id)).version == 1
                await _until(lambda: cache._listening)
                confirmed = twin.confirm_payment(payment.id, actor=ADMIN)
                await _until(lambda: cache._tier.floor(payment.id) == confirmed.version)
                assert await service.get_payment(payment.id) == confirmed
                await service.refund_payment(payment.id, actor=ADMIN)
                deadline = time.monotonic() + 5
                while twin.get_payment(payment.id).status is not po.PaymentStatus.REFUNDED:
                    assert time.monotonic() < deadline, "the blocking side never heard"
                    await asyncio.sleep(0.001)  # polling for the other side's invalidation
    finally:
        blocking.close()
        await cache.aclose()


def test_an_unreadable_invalidation_empties_the_local_tier() -> None:
    """A stranger's message on the channel drops every local payment instead of
    killing the listener."""
    cache = SyncRedisCache(REDIS, namespace=f"t{uuid4().hex[:8]}")
    payment = _payment(3)
    cache._tier.offer(payment, cache._tier.epoch)
    cache._heard({"type": "message", "data": b"not an invalidation"})
    assert cache._tier.get(payment.id) is None
    assert cache._tier.floor(payment.id) == 3
    cache.close()


async def test_a_write_right_after_an_outage_reaches_redis(tmp_path: Path) -> None:
    """A writer whose last write failed still writes the moment Redis is back: had it
    waited out its retry window, another process would read the entry it had not
    overwritten."""
    with _private_redis(tmp_path) as (redis_url, (stop, start)):
        namespace = f"t{uuid4().hex[:8]}"
        writer = po.RedisCache(redis_url, namespace=namespace, local=False, retry_after=60)
        reader = po.RedisCache(redis_url, namespace=namespace, local=False)
        try:
            old = _payment(1)
            stop()
            await writer.set(old)  # fails: Redis is down, the writer's retry window opens
            start()
            await reader.set(old)  # a reader fills the entry from the store
            new = _payment(2, old.id)
            await writer.set(new)  # the change that followed, inside the retry window
            assert (await reader.get(old.id)) == new
        finally:
            await writer.aclose()
            await reader.aclose()


async def test_a_process_starts_one_new_generation_however_many_tasks_saw_redis_fail() -> None:
    """Redis cut away (a proxy in front of the shared server) while 16 tasks write: once it
    answers again, 16 tasks find it at once, and exactly one new generation is begun."""
    import redis.asyncio as redis

    from tests.proxy import TcpProxy

    brokers.require("Redis", brokers.REDIS)
    namespace = f"t{uuid4().hex[:8]}"
    admin = redis.Redis.from_url(REDIS)
    with TcpProxy(("127.0.0.1", 6379)) as proxy:
        cache = po.RedisCache(f"redis://127.0.0.1:{proxy.port}/0", namespace=namespace, local=False)
        try:
            payments = [_payment(1) for _ in range(16)]
            await cache.set(payments[0])
            begun = await admin.get(f"{namespace}:gen:n")
            proxy.cut(60)
            await asyncio.gather(*(cache.set(p) for p in payments))
            proxy.cut(0)
            await asyncio.gather(*(cache.set(_payment(2, p.id)) for p in payments))
            reader = po.RedisCache(REDIS, namespace=namespace, local=False)
            found = [await reader.get(p.id) for p in payments]
            await reader.aclose()
            assert [p and p.version for p in found] == [2] * 16
            assert int(await admin.get(f"{namespace}:gen:n")) == int(begun) + 1
        finally:
            await cache.aclose()
            await admin.aclose()
