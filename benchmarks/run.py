"""Run the benchmarks: ``python -m benchmarks.run`` (or ``--quick`` for a smoke run).

Every implementation runs in this one process against the same databases, in
alternating rounds (A B A B ...); ratios pair figures from the same round. The books
(``python -m benchmarks.books``: the journal's cost, ``verify`` up to a million payments)
run after the rest with ``--books``, or alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

import paymentorch as po
from benchmarks import books, bulk, infrastructure, plans, workers
from benchmarks.harness import (
    ADMIN,
    IMPLEMENTATIONS,
    POSTGRES_URL,
    Databases,
    Series,
    peak_rss_mb,
    ratio,
    rss_mb,
)

RESULTS = Path(__file__).resolve().parent / "results"
MODES = {"sequential": 1, "8 tasks": 8}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: check it all runs")
    parser.add_argument("--n", type=int, help="lifecycles per run (default 2000; quick 60)")
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 5; quick 1)")
    parser.add_argument("--only", nargs="*", choices=sorted(IMPLEMENTATIONS), help="subset")
    parser.add_argument("--skip-bulk", action="store_true", help="lifecycles only")
    parser.add_argument(
        "--lifecycles-only",
        action="store_true",
        help="the lifecycles' table and targets alone (no reads, bulk, worker, plans or"
        " adapters; no results file)",
    )
    parser.add_argument(
        "--books", action="store_true", help="then python -m benchmarks.books (about 15 min)"
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help="a database whose user may create databases",
    )
    return parser.parse_args(argv)


async def lifecycles(db: Databases, names: list[str], n: int, rounds: int) -> list[Series]:
    series = {(name, mode): Series(name, mode) for mode in MODES for name in names}
    warm = max(10, n // 20)
    runs = rounds * len(series)
    with tqdm(total=runs + len(series), desc="lifecycles", unit="run", file=sys.stderr) as bar:
        for name, mode in series:  # warm caches, pools and prepared statements
            bar.set_postfix_str(f"warm-up {name} {mode}")
            await IMPLEMENTATIONS[name](db, warm, MODES[mode])
            bar.update()
        for round_ in range(rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            for mode, concurrency in MODES.items():
                for name in order:
                    bar.set_postfix_str(f"round {round_ + 1} {name} {mode}")
                    # Start each run with no garbage left by the previous one: a full
                    # collection landing inside a 70 ms run would double it.
                    gc.collect()
                    timed = await IMPLEMENTATIONS[name](db, n, concurrency)
                    entry = series[(name, mode)]
                    entry.rates.append(n / timed.seconds)
                    entry.cpu_us.append(timed.cpu / n * 1e6)
                    entry.rss.append(rss_mb())
                    bar.update()
    return list(series.values())


async def cached_reads(count: int, rounds: int) -> dict[str, list[float]]:
    """Cached ``get_payment`` calls per second, async service and blocking twin, paired."""
    rates: dict[str, list[float]] = {"async": [], "sync": []}
    async with await po.open_service("memory://") as service:
        twin = po.open_sync_service("memory://")
        try:
            ours = await service.create_payment("ABCD-12345", "1.00", actor=ADMIN)
            theirs = twin.create_payment("ABCD-12345", "1.00", actor=ADMIN)
            for _ in range(rounds):
                gc.collect()
                start = time.perf_counter()
                for _ in range(count):
                    await service.get_payment(ours.id)
                rates["async"].append(count / (time.perf_counter() - start))
                gc.collect()
                start = time.perf_counter()
                for _ in range(count):
                    twin.get_payment(theirs.id)
                rates["sync"].append(count / (time.perf_counter() - start))
        finally:
            twin.close()
    return rates


async def bulk_and_listing(db: Databases, quick: bool, rounds: int) -> dict[str, Any]:
    size = 2_000 if quick else 200_000
    ours, copy = [], []
    for _ in tqdm(range(rounds), desc="bulk create", unit="round", file=sys.stderr):
        ours.append(size / await bulk.create_payments(db, size))
        copy.append(size / await bulk.raw_copy(db, size))
    rows = 20_000 if quick else 1_000_000
    depths = [100, 10_000, 19_000] if quick else [1_000, 100_000, 900_000]
    print(f"seeding {rows:,} payments for listing ...", file=sys.stderr)
    bulk.seed_listing(db, rows)
    pages = await bulk.page_times(db, depths, repeats=5 if quick else 25)
    memory = await bulk.memory_footprint(20_000 if quick else 1_000_000)
    return {
        "bulk_rows": size,
        "create_payments_rows_per_s": [round(x) for x in ours],
        "raw_copy_rows_per_s": [round(x) for x in copy],
        "bulk_ratio": [round(a / b, 3) for a, b in zip(ours, copy, strict=True)],
        "listing_rows": rows,
        "pages": pages,
        "memory": memory,
    }


def targets(
    series: list[Series], extra: dict[str, Any], reads: dict[str, list[float]]
) -> list[dict[str, Any]]:
    found = {(s.name, s.mode): s for s in series}
    checks: list[dict[str, Any]] = []

    def paired(label: str, a: str, b: str, mode: str, goal: float) -> None:
        if (a, mode) in found and (b, mode) in found:
            r = ratio(found[(a, mode)], found[(b, mode)])
            checks.append(
                {"target": label, "mode": mode, "goal": goal, **r, "met": r["median"] >= goal}
            )

    for mode in MODES:
        pg = "paymentorch-postgresql"
        paired("PostgreSQL vs one-statement", pg, "one-statement", mode, 0.8)
        paired(
            "PostgreSQL, LocalCache, vs one-statement",
            "postgresql-localcache",
            "one-statement",
            mode,
            0.8,
        )
        paired("PostgreSQL vs naive-sql", pg, "naive-sql", mode, 1.2)
        paired("PostgreSQL vs orm", pg, "orm", mode, 4.0)
        paired(
            "SQLite vs sqlite3",
            "paymentorch-sqlite",
            "sqlite3",
            mode,
            0.9 if mode == "sequential" else 0.5,
        )
        for backend in ("memory", "sqlite", "postgresql"):
            paired(
                f"sync twin vs async, {backend}", f"sync-{backend}", f"paymentorch-{backend}",
                mode, 0.95,
            )  # fmt: skip
    if ("paymentorch-memory", "sequential") in found:
        rates = found[("paymentorch-memory", "sequential")].rates
        checks.append(
            {
                "target": "memory lifecycles/s",
                "mode": "sequential",
                "goal": 50_000,
                "median": round(statistics.median(rates)),
                "min": round(min(rates)),
                "max": round(max(rates)),
                "met": statistics.median(rates) >= 50_000,
            }
        )
    if reads:
        values = [s / a for s, a in zip(reads["sync"], reads["async"], strict=True)]
        checks.append(
            {
                "target": "cached get_payment, twin vs async",
                "mode": "reads",
                "goal": 0.9,
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
                "met": statistics.median(values) >= 0.9,
            }
        )
    if extra:
        bulk_ratio = extra["bulk_ratio"]
        checks.append(
            {
                "target": "create_payments vs raw COPY",
                "mode": "bulk",
                "goal": 0.7,
                "median": statistics.median(bulk_ratio),
                "min": min(bulk_ratio),
                "max": max(bulk_ratio),
                "met": statistics.median(bulk_ratio) >= 0.7,
            }
        )
        pages = extra["pages"]
        shallow, deep = pages[min(pages, key=int)], pages[max(pages, key=int)]
        depth_ratio = round(deep["keyset_ms"] / shallow["keyset_ms"], 3)
        checks.append(
            {
                "target": "keyset page, deepest / shallowest",
                "mode": "listing",
                "goal": "<= 2",
                "median": depth_ratio,
                "min": depth_ratio,
                "max": depth_ratio,
                "met": depth_ratio <= 2,
            }
        )
        memory = extra["memory"]
        mib = memory["rss_mib"]
        checks.append(
            {
                "target": f"{memory['payments']:,} payments in memory (MiB)",
                "mode": "memory",
                "goal": "< 1024",
                "median": mib,
                "min": mib,
                "max": mib,
                "met": mib < 1024,
            }
        )
    return checks


def worker_lines(series: list[Series], worker: dict[str, Any]) -> str:
    """The worker's figures, against the PostgreSQL lifecycle rate of the same run."""
    found = {(s.name, s.mode): s.median for s in series}
    lifecycle = found.get(("paymentorch-postgresql", "sequential"))
    lines = [f"\nworker on PostgreSQL, {worker['operations']:,} operations, instant processor:"]
    for label, rate in worker["operations_per_s"].items():
        against = f" ({rate / lifecycle:.2f} x the sequential lifecycle)" if lifecycle else ""
        lines.append(f"  {label:<14}{rate:>8,} operations/s{against}")
    latency = worker["creation_to_answer_s"]
    lines.append(
        f"creation to answer, processor latency 1-5 s, {latency['payments']} payments:"
        f" p50 {latency['p50']} s, p99 {latency['p99']} s"
    )
    return "\n".join(lines)


def table(series: list[Series], checks: list[dict[str, Any]], extra: dict[str, Any]) -> str:
    found = {(s.name, s.mode): s for s in series}
    lines = [
        f"{'implementation':<24}{'mode':<12}{'lifecycles/s':>14}{'range':>20}"
        f"{'x naive-sql':>13}{'x orm':>9}{'CPU us':>8}{'RSS MiB':>10}"
    ]
    for s in series:
        vs = []
        for base in ("naive-sql", "orm"):
            other = found.get((base, s.mode))
            vs.append(f"{ratio(s, other)['median']:.2f}" if other else "-")
        lines.append(
            f"{s.name:<24}{s.mode:<12}{s.median:>14,.0f}"
            f"{f'{min(s.rates):,.0f}-{max(s.rates):,.0f}':>20}{vs[0]:>13}{vs[1]:>9}"
            f"{statistics.median(s.cpu_us):>8,.0f}{max(s.rss):>10,.0f}"
        )
    if extra:
        lines.append("")
        lines.append(
            f"bulk {extra['bulk_rows']:,}: create_payments "
            f"{extra['create_payments_rows_per_s']} rows/s, raw COPY "
            f"{extra['raw_copy_rows_per_s']} rows/s"
        )
        for depth, figures in extra["pages"].items():
            lines.append(
                f"page of 50 at depth {int(depth):>9,}: keyset "
                f"{figures['keyset_ms']:>8.3f} ms, OFFSET {figures['offset_ms']:>9.3f} ms"
            )
        lines.append(f"memory: {extra['memory']}")
    lines.append("")
    lines.append(f"{'target':<40}{'mode':<12}{'goal':>8}{'median':>10}{'range':>20}  met")
    lines.extend(
        f"{c['target']:<40}{c['mode']:<12}{c['goal']!s:>8}{c['median']!s:>10}"
        f"{str(c['min']) + '-' + str(c['max']):>20}  {'yes' if c['met'] else 'NO'}"
        for c in checks
    )
    return "\n".join(lines)


def chart(series: list[Series], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(s.name for s in series))
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.4
    for offset, mode in zip((-width / 2, width / 2), MODES, strict=True):
        picked = [next(s for s in series if s.name == n and s.mode == mode) for n in names]
        medians = [s.median for s in picked]
        errors = [
            [s.median - min(s.rates) for s in picked],
            [max(s.rates) - s.median for s in picked],
        ]
        ax.bar(
            [i + offset for i in range(len(names))],
            medians,
            width,
            yerr=errors,
            label=mode,
            capsize=3,
        )
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("lifecycles per second (median, range)")
    ax.set_yscale("log")
    ax.set_title("Payment lifecycle (create + confirm: audit entries, events, exposure, journal)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    n = args.n or (60 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 5)
    names = args.only or list(IMPLEMENTATIONS)
    with tempfile.TemporaryDirectory() as folder:
        db = Databases(args.postgres_url, Path(folder))
        try:
            started = time.time()
            series = await lifecycles(db, names, n, rounds)
            if args.lifecycles_only:
                print(table(series, targets(series, {}, {}), {}))
                return 0
            reads = await cached_reads(n * 10, rounds)
            extra = {} if args.skip_bulk else await bulk_and_listing(db, args.quick, rounds)
            print("worker throughput and latency ...", file=sys.stderr)
            worker = await workers.run(db, args.quick)
            print("installment plans and credit ...", file=sys.stderr)
            plan_figures = await plans.run(db, args.quick)
            print("brokers, Redis cache and encryption ...", file=sys.stderr)
            adapters = await infrastructure.run(db, args.quick)
        finally:
            db.drop()
    checks = targets(series, extra, reads)
    print(table(series, checks, extra))
    print(worker_lines(series, worker))
    print("\ninstallment plans and credit, PostgreSQL:\n" + json.dumps(plan_figures, indent=2))
    print("\nbrokers, Redis cache, encryption, PostgreSQL:\n" + json.dumps(adapters, indent=2))
    report = {
        "paymentorch": po.__version__,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "peak_rss_mb": round(peak_rss_mb()),
        },
        "config": {"lifecycles_per_run": n, "rounds": rounds, "modes": MODES, "quick": args.quick},
        "lifecycles": [
            {
                "implementation": s.name,
                "mode": s.mode,
                "rates": [round(r) for r in s.rates],
                "median": round(s.median),
                "cpu_us_per_lifecycle": [round(x, 1) for x in s.cpu_us],
                "rss_mb": [round(x) for x in s.rss],
            }
            for s in series
        ],
        "cached_reads_per_s": {k: [round(x) for x in v] for k, v in reads.items()},
        "bulk_and_listing": extra,
        "worker": worker,
        "plans": plan_figures,
        "infrastructure": adapters,
        "targets": checks,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "quick" if args.quick else "latest"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(series, RESULTS / f"{stem}.png")
    print(f"\nwrote {RESULTS / f'{stem}.json'} and {RESULTS / f'{stem}.png'}", file=sys.stderr)
    if args.books:
        print("\nthe books ...", file=sys.stderr)
        return await books.main(["--quick", "--postgres-url", args.postgres_url] if args.quick
                                else ["--postgres-url", args.postgres_url])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
