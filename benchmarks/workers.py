"""Operations through ``PaymentWorker`` on PostgreSQL: throughput with a processor that
answers at once (one and four worker processes), and the time from creation to
confirmation under the seed design's processor latency (1 to 5 s).

Part of ``./dev bench``; alone, beside the PostgreSQL lifecycle measured in the same
process: ``.nox/bench/bin/python -m benchmarks.workers [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import paymentorch as po
from benchmarks.harness import ADMIN, IMPLEMENTATIONS, Databases
from paymentorch.testing import SimulatedProcessor


def _instant() -> SimulatedProcessor:
    return SimulatedProcessor(success_rate=0.95, latency=(0, 0))


async def _queue(url: str, count: int) -> None:
    async with await po.open_service(url, processor=_instant(), create_schema=False) as service:
        for index in range(count):
            await service.create_payment(
                "BNCH-00001", f"{1 + index % 50}.00", actor=ADMIN, capture_method="automatic"
            )


def _drain(url: str, ready: Any, go: Any) -> None:
    """A worker process: wait for the start, work until nothing is left."""

    async def run() -> None:
        async with await po.open_service(url, processor=_instant(), create_schema=False) as service:
            worker = po.PaymentWorker(service, batch_size=20)
            ready.release()
            await asyncio.to_thread(go.wait)
            while await worker.run_once():
                pass

    asyncio.run(run())


async def worker_rate(db: Databases, count: int, processes: int) -> float:
    """Operations per second carried out by ``processes`` worker processes."""
    url = db.fresh_postgres()
    await _queue(url, count)
    context = multiprocessing.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    children = [context.Process(target=_drain, args=(url, ready, go)) for _ in range(processes)]
    for child in children:
        child.start()
    for _ in children:
        await asyncio.to_thread(ready.acquire)
    started = time.perf_counter()
    go.set()
    for child in children:
        await asyncio.to_thread(child.join)
    elapsed = time.perf_counter() - started
    async with await po.open_service(url, create_schema=False) as service:
        left = await service.store.operations_with_status(po.OperationStatus.PENDING, limit=1)
    if left or any(c.exitcode for c in children):
        raise RuntimeError("a worker process failed to finish the queue")
    return count / elapsed


async def confirmation_latency(db: Databases, count: int, per_second: float) -> dict[str, float]:
    """Seconds from creation to the processor's answer landing (p50, p99), payments
    created at ``per_second`` against the seed's processor (1 to 5 s per call)."""
    url = db.fresh_postgres()
    seed = SimulatedProcessor(seed=7)  # 95% success after 1 to 5 s
    async with await po.open_service(url, processor=seed, create_schema=False) as service:
        worker = po.PaymentWorker(
            service, batch_size=100, poll_interval=0.1
        )  # 20/s x 3 s in flight
        stop = asyncio.Event()
        working = asyncio.create_task(worker.run(stop))
        made = []
        for index in range(count):
            made.append(await service.create_payment(
                "BNCH-00002", f"{1 + index % 50}.00", actor=ADMIN, capture_method="automatic"
            ))  # fmt: skip
            await asyncio.sleep(1 / per_second)  # a steady arrival rate
        pending = po.OperationStatus.PENDING
        while await service.store.operations_with_status(pending, limit=1):  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # polling the store for the last answers
        stop.set()
        await working
        waits = []
        for payment in made:
            done = await service.get_payment(payment.id)
            waits.append((done.updated_at - done.created_at) / timedelta(seconds=1))
    cuts = statistics.quantiles(waits, n=100)
    return {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2), "payments": count}


async def run(db: Databases, quick: bool) -> dict[str, Any]:
    """Every figure of this module."""
    count = 300 if quick else 5_000
    rates = {f"{n} process(es)": round(await worker_rate(db, count, n)) for n in (1, 4)}
    latency = await confirmation_latency(db, 40 if quick else 400, per_second=20)
    return {"operations_per_s": rates, "operations": count, "creation_to_answer_s": latency}


async def main(argv: list[str] | None = None) -> int:
    """The worker's figures beside the lifecycle rate, measured in this process."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    url = os.environ.get("PAYMENTORCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
    with tempfile.TemporaryDirectory() as folder:
        db = Databases(url, Path(folder))
        try:
            n = 300 if args.quick else 2000
            lifecycle = IMPLEMENTATIONS["paymentorch-postgresql"]
            await lifecycle(db, 50, 1)  # warm up
            rates = [n / (await lifecycle(db, n, 1)).seconds for _ in range(3)]
            figures = await run(db, args.quick)
        finally:
            db.drop()
    figures["lifecycles_per_s"] = round(statistics.median(rates))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
