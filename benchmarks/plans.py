"""Pay-in-4 with a credit check against the plain lifecycle, and a contended run where
one customer takes 10% of all creations (its exposure row is the hot row), on
PostgreSQL: ``.nox/bench/bin/python -m benchmarks.plans [--quick]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import paymentorch as po
from benchmarks.harness import ADMIN, Databases

CREDIT = po.CreditPolicy(limit=Decimal("1000000000.00"), currency="USD")


async def lifecycles(url: str, count: int, *, plan: bool) -> float:
    """Create and confirm ``count`` payments (each pay-in-4 with a credit check, or
    plain); return lifecycles per second."""
    options: dict[str, Any] = {"credit": CREDIT} if plan else {}
    terms = po.PlanTerms() if plan else None
    async with await po.open_service(url, **options) as service:
        start = time.perf_counter()
        for index in range(count):
            payment = await service.create_payment(
                f"PLAN-{index % 1000:05d}", "125.50", actor=ADMIN, plan=terms
            )
            await service.confirm_payment(payment.id, actor=ADMIN)
        return count / (time.perf_counter() - start)


async def contended(url: str, count: int, *, tasks: int = 8, credit: bool) -> dict[str, float]:
    """``tasks`` tasks create ``count`` pay-in-4 payments, 10% of them for one customer;
    return creations per second and the p99 of one creation, in milliseconds."""
    options: dict[str, Any] = {"credit": CREDIT} if credit else {}
    rng = random.Random(4)
    customers = ["HOTT-00001" if rng.random() < 0.1 else f"COLD-{rng.randrange(10**5):05d}"
                 for _ in range(count)]  # fmt: skip
    latencies: list[float] = []
    async with await po.open_service(url, pool_size=tasks, **options) as service:

        async def work(mine: list[str]) -> None:
            for customer in mine:
                began = time.perf_counter()
                await service.create_payment(customer, "125.50", actor=ADMIN, plan=po.PlanTerms())
                latencies.append(time.perf_counter() - began)

        start = time.perf_counter()
        await asyncio.gather(*(work(customers[n::tasks]) for n in range(tasks)))
        elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return {"creations_per_s": round(count / elapsed), "p99_ms": round(cuts[98] * 1000, 2)}


async def run(db: Databases, quick: bool) -> dict[str, Any]:
    """Every figure, each run three times (once when quick) on a fresh database, in
    alternation; medians."""
    n = 300 if quick else 2000
    plain, planned, hot, cold = [], [], [], []
    for _ in range(1 if quick else 3):
        plain.append(await lifecycles(db.fresh_postgres(), n, plan=False))
        planned.append(await lifecycles(db.fresh_postgres(), n, plan=True))
        hot.append(await contended(db.fresh_postgres(), n * 2, credit=True))
        cold.append(await contended(db.fresh_postgres(), n * 2, credit=False))
    return {
        "lifecycles": n,
        "plain_lifecycles_per_s": round(statistics.median(plain)),
        "pay_in_4_with_credit_per_s": round(statistics.median(planned)),
        "ratio": round(statistics.median(p / q for p, q in zip(planned, plain, strict=True)), 3),
        "contended_8_tasks_with_credit": _median(hot),
        "contended_8_tasks_without_credit": _median(cold),
    }


async def main(argv: list[str] | None = None) -> int:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plans")
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


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
