"""The books on PostgreSQL (#23, "No hot row"): what the journal's writes cost.

- One merchant's confirmations: ``--n`` payments are created up front (all owed to the
  ``default`` merchant, through the ``manual`` clearing account), then confirmed, by one
  task and by 8, with the journal's writes and without them. Goal: with 8 tasks at
  least 0.8x the rate without the journal (no hot row).
- The plain lifecycle (create and confirm) the same way.
- ``verify`` at 10k, 100k and 1M payments (``--sizes``), each size in a child process:
  seconds, and the child's peak resident memory, which must not grow with the size.

"Without the journal" is the same store with each change's journal entry taken off
before it is written (``WithoutJournal``): its statement is then built without the
journal entry and postings CTEs, all else equal. Variants alternate in rounds (A B,
B A, ...) on a fresh schema per run; ratios pair runs of the same round.

    python -m benchmarks.books [--quick] [--n 2000] [--rounds 7] [--sizes 10000 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import psycopg

import paymentorch as po
from benchmarks import seed
from benchmarks.harness import (
    ADMIN,
    POSTGRES_URL,
    Databases,
    Series,
    peak_rss_mb,
    ratio,
    rss_mb,
    split,
)
from paymentorch.adapters.postgres import PostgresPaymentStore
from paymentorch.adapters.postgres.statements import conninfo
from paymentorch.domain import Change, PaymentStatus

RESULTS = Path(__file__).resolve().parent / "results"
MODES = {"sequential": 1, "8 tasks": 8}
GOAL = 0.8  # with 8 tasks, against the rate without the journal's writes


class WithJournal(PostgresPaymentStore):
    """The store as shipped; each change goes through ``attrs.evolve`` as in
    ``WithoutJournal``, so that the two differ by the journal's writes alone."""

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        return await super().apply(attrs.evolve(change), expected=expected)


class WithoutJournal(PostgresPaymentStore):
    """The store with the journal's writes removed: a change's entry is dropped before
    its statement is built (benchmark only; the books are then wrong)."""

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        return await super().apply(attrs.evolve(change, journal=None), expected=expected)


VARIANTS: dict[str, type[PostgresPaymentStore]] = {
    "journal": WithJournal,
    "no journal": WithoutJournal,
}


async def _service(url: str, store: type[PostgresPaymentStore], tasks: int) -> po.PaymentService:
    """A service as ``open_service`` makes one on PostgreSQL (no cache), on ``store``."""
    opened = await store.open(conninfo(url), pool_size=tasks)
    return po.PaymentService(opened, cache=None)


async def confirmations(
    db: Databases, store: type[PostgresPaymentStore], n: int, tasks: int
) -> float:
    """Seconds for ``tasks`` tasks to confirm ``n`` Pending payments of one merchant (and
    as many customers: no exposure row is shared)."""
    service = await _service(db.fresh_postgres(), store, tasks)
    try:
        items = [po.NewPayment(f"CUST-{i % 100_000:05d}", "125.50") for i in range(n)]
        ids = [p.id for p in await service.create_payments(items, actor=ADMIN)]

        async def confirm(mine: list[Any]) -> None:
            for pid in mine:
                await service.confirm_payment(pid, actor=ADMIN)

        gc.collect()
        start = time.perf_counter()
        await asyncio.gather(*(confirm(ids[k::tasks]) for k in range(tasks)))
        return time.perf_counter() - start
    finally:
        await service.aclose()


async def lifecycles(db: Databases, store: type[PostgresPaymentStore], n: int, tasks: int) -> float:
    """Seconds for ``tasks`` tasks to create and confirm ``n`` payments."""
    service = await _service(db.fresh_postgres(), store, tasks)
    numbers = itertools.count()  # a customer per payment: no exposure row is shared
    try:

        async def one(count: int) -> None:
            for _ in range(count):
                customer = f"CUST-{next(numbers) % 100_000:05d}"
                payment = await service.create_payment(customer, "125.50", actor=ADMIN)
                await service.confirm_payment(payment.id, actor=ADMIN)

        gc.collect()
        start = time.perf_counter()
        await split(n, tasks, one)
        return time.perf_counter() - start
    finally:
        await service.aclose()


Work = Callable[[Databases, type[PostgresPaymentStore], int, int], Awaitable[float]]
WORKLOADS: dict[str, Work] = {"confirm": confirmations, "lifecycle": lifecycles}


async def writes(db: Databases, workload: str, n: int, rounds: int) -> list[Series]:
    """Each variant and mode, ``rounds`` times, alternating; one warm-up run each first."""
    work = WORKLOADS[workload]
    series = {(name, mode): Series(name, mode) for mode in MODES for name in VARIANTS}
    for name, mode in series:
        await work(db, VARIANTS[name], max(40, n // 20), MODES[mode])
    names = list(VARIANTS)
    for round_ in range(rounds):
        for mode, tasks in MODES.items():
            for name in names if round_ % 2 == 0 else names[::-1]:
                seconds = await work(db, VARIANTS[name], n, tasks)
                series[(name, mode)].rates.append(n / seconds)
                print(f"  {workload} round {round_ + 1} {name:<11} {mode:<11}"
                      f" {n / seconds:>8,.0f}/s", file=sys.stderr)  # fmt: skip
    return list(series.values())


def summary(workload: str, series: list[Series]) -> list[dict[str, Any]]:
    found = {(s.name, s.mode): s for s in series}
    rows = []
    for mode in MODES:
        with_, without = found[("journal", mode)], found[("no journal", mode)]
        r = ratio(with_, without)
        rows.append({
            "workload": workload,
            "mode": mode,
            "journal_per_s": _figures(with_.rates),
            "no_journal_per_s": _figures(without.rates),
            "ratio": r,
            **({"goal": GOAL, "met": r["median"] >= GOAL}
               if (workload, mode) == ("confirm", "8 tasks") else {}),
        })  # fmt: skip
    return rows


def _figures(rates: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(rates)),
        "min": round(min(rates)),
        "max": round(max(rates)),
        "rates": [round(r) for r in rates],
    }


# -- verify -----------------------------------------------------------------------


async def _rebuild(url: str) -> None:
    async with await po.open_service(url) as service:
        await service.rebuild_exposure()


async def verify_run(db: Databases, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """Grow one database through ``sizes``; at each, ``verify`` in ``repeats`` child
    processes (a fresh peak resident memory each)."""
    url = db.fresh_postgres()
    print(f"verify: a template of {seed.TEMPLATE:,} payments ...", file=sys.stderr)
    await seed.template(url)
    results = []
    for size in sorted(sizes):
        print(f"verify: copying it to {size:,} payments ...", file=sys.stderr)
        seeded = await asyncio.to_thread(seed.grow, url, size)
        await _rebuild(url)
        runs = [await asyncio.to_thread(_child, url, size) for _ in range(repeats)]
        for run in runs:
            print(f"  verify {size:>9,}: {run['seconds']:>8.2f} s,"
                  f" peak {run['peak_mib']:.0f} MiB", file=sys.stderr)  # fmt: skip
        results.append({
            "payments": size,
            "seed_seconds": round(seeded, 1),
            "seconds": [r["seconds"] for r in runs],
            "payments_per_s": [round(size / r["seconds"]) for r in runs],
            "peak_mib": [r["peak_mib"] for r in runs],
            "rss_before_mib": [r["rss_before_mib"] for r in runs],
            "database_mib": _database_mib(url),
        })  # fmt: skip
    return results


def _database_mib(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return round(row[0] / 2**20) if row else 0


def _child(url: str, size: int) -> dict[str, Any]:
    """``verify`` in a fresh interpreter; what it printed last."""
    done = subprocess.run(  # noqa: S603 - this module, in this interpreter
        [sys.executable, "-m", "benchmarks.books", "--verify-child", url, "--expect", str(size)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


async def verify_child(url: str, expect: int) -> dict[str, Any]:
    """Run ``verify`` once; it must find the database sound and count ``expect`` payments."""
    async with await po.open_service(url) as service:
        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        report = await service.verify()
        seconds = time.perf_counter() - start
    assert report.ok, report.problems[:10]
    assert report.checked == expect, (report.checked, expect)
    return {"seconds": round(seconds, 2), "peak_mib": round(peak_rss_mb(), 1),
            "rss_before_mib": round(before, 1)}  # fmt: skip


# -- the report ---------------------------------------------------------------------


def table(rows: list[dict[str, Any]], verified: list[dict[str, Any]]) -> str:
    lines = []
    if rows:
        lines.append(f"{'workload':<11}{'mode':<12}{'journal/s':>22}{'no journal/s':>22}"
                     f"{'ratio (range)':>22}")  # fmt: skip
        for r in rows:
            cells = [_cell(r["journal_per_s"]), _cell(r["no_journal_per_s"]), _cell(r["ratio"])]
            goal = f"  goal {r['goal']}: {'met' if r['met'] else 'MISSED'}" if "goal" in r else ""
            lines.append(f"{r['workload']:<11}{r['mode']:<12}"
                         + "".join(f"{c:>22}" for c in cells) + goal)  # fmt: skip
    lines.extend(
        f"verify {v['payments']:>10,} payments: {statistics.median(v['seconds']):>8.2f} s"
        f" ({min(v['seconds'])}-{max(v['seconds'])}), peak {max(v['peak_mib']):.0f} MiB,"
        f" database {v['database_mib']:,} MiB"
        for v in verified
    )
    return "\n".join(lines)


def _cell(figures: dict[str, Any]) -> str:
    low, high = figures["min"], figures["max"]
    if isinstance(figures["median"], int):
        return f"{figures['median']:,} ({low:,}-{high:,})"
    return f"{figures['median']} ({low}-{high})"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.books",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: check it all runs")
    parser.add_argument("--n", type=int, help="payments per run (default 2000; quick 100)")
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 7; quick 1)")
    parser.add_argument(
        "--only", nargs="*", choices=["confirm", "lifecycle", "verify"], help="a subset"
    )
    parser.add_argument(
        "--sizes", nargs="*", type=int, help="verify's sizes (default 10000 100000 1000000)"
    )
    parser.add_argument("--verify-repeats", type=int, default=1, help="verify runs per size")
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help="a database whose user may create databases",
    )
    parser.add_argument("--verify-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.verify_child:
        print(json.dumps(await verify_child(args.verify_child, args.expect)))
        return 0
    n = args.n or (100 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 7)
    sizes = args.sizes or ([2000] if args.quick else [10_000, 100_000, 1_000_000])
    parts = args.only or ["confirm", "lifecycle", "verify"]
    started = time.time()
    rows: list[dict[str, Any]] = []
    verified: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        db = Databases(args.postgres_url, Path(folder))
        try:
            for workload in ("confirm", "lifecycle"):
                if workload in parts:
                    rows += summary(workload, await writes(db, workload, n, rounds))
            if "verify" in parts:
                verified = await verify_run(db, sizes, args.verify_repeats)
        finally:
            db.drop()
    print(table(rows, verified))
    report = {
        "paymentorch": po.__version__,
        "command": " ".join(
            ["python -m benchmarks.books", *(sys.argv[1:] if argv is None else argv)]
        ),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "postgresql": _server_version(args.postgres_url),
        },
        "config": {"payments_per_run": n, "rounds": rounds, "modes": MODES, "quick": args.quick},
        "writes": rows,
        "verify": verified,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / ("books-quick.json" if args.quick else "books.json")
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


def _server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
