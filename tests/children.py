"""Work for child processes in the tests (importable under ``spawn``)."""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import paymentorch as po


def forked(body: Callable[[], int]) -> int:
    """``body``'s return in a fork()ed child, as its exit code (1 if it raised); the
    child never returns into pytest, and one still running after 30 s is killed."""
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process is risky: the tests that
        # fork are about that very case (gunicorn --preload).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while not (done := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the child hung")
        time.sleep(0.05)  # polling a child's exit; nothing here races
    return os.waitstatus_to_exitcode(done[1])


def confirm(url: str, payment_id: str) -> str:
    """Confirm the payment through a service with the default options; return its status."""

    async def run() -> str:
        async with await po.open_service(url) as service:
            payment = await service.confirm_payment(payment_id, actor=po.Actor.system())
            return payment.status.value

    return asyncio.run(run())


def instant_processor() -> po.testing.SimulatedProcessor:
    """A simulated processor that always succeeds, at once (for ``paymentorch worker``)."""
    return po.testing.SimulatedProcessor(success_rate=1.0, latency=(0, 0), seed=5)


def declining_processor() -> po.testing.SimulatedProcessor:
    """A simulated processor that declines everything, at once (for ``paymentorch worker``)."""
    return po.testing.SimulatedProcessor(success_rate=0.0, latency=(0, 0), seed=5)


def read_through_redis(url: str, redis_url: str, namespace: str, local: bool, conn: Any) -> None:
    """Read one payment whenever the parent says it changed, through a RedisCache.

    Strict (``local=False``): for each version sent, read once and send back what was
    read. With the local tier: read until the version sent appears, checking that no read
    is older than the one before; send back (seconds from the commit, reads, errors).
    """

    async def run() -> None:
        cache = po.RedisCache(redis_url, namespace=namespace, local=local)
        try:
            async with await po.open_service(url, cache=cache) as service:
                payment_id, last = conn.recv(), 0
                conn.send("ready")
                while (message := conn.recv()) is not None:
                    version, committed = message
                    reads = errors = 0
                    while True:
                        reads += 1
                        try:
                            found = (await service.get_payment(payment_id)).version
                        except Exception:
                            errors += 1
                            found = last
                        if found < last:
                            conn.send(("older", found, last))
                            return
                        last = found
                        if not local or found >= version:
                            break
                        if time.monotonic() - committed > 5:
                            conn.send(("late", found, version))
                            return
                        await asyncio.sleep(0)  # let the invalidation in
                    conn.send((found, time.monotonic() - committed, reads, errors))
        finally:
            await cache.aclose()

    asyncio.run(run())


def read_versions(url: str, redis_url: str, namespace: str, conn: Any) -> None:
    """For each list of payment ids the parent sends, read each through a strict
    RedisCache (``local=False``) and send back the versions read; None ends it."""

    async def run() -> None:
        cache = po.RedisCache(redis_url, namespace=namespace, local=False)
        try:
            async with await po.open_service(url, cache=cache) as service:
                conn.send("ready")
                while (ids := conn.recv()) is not None:
                    conn.send([(await service.get_payment(pid)).version for pid in ids])
        finally:
            await cache.aclose()

    asyncio.run(run())
