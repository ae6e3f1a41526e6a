"""Client instructions per lifecycle, counted by valgrind: a figure the machine's other
load does not move, for comparing the Python around the statements before and after a
change. ``python -m benchmarks.instructions [--n 500] [--only NAME ...]`` (valgrind on
the PATH; about ten minutes for the five defaults).

Each implementation of ``benchmarks.harness`` runs sequentially in two child processes
under ``valgrind --tool=callgrind``: a warm-up run, then ``n`` lifecycles; and the
warm-up run alone, then none. The difference over ``n`` is the count per lifecycle:
imports, connections and the warm-up cancel out. Only this side is counted: the
PostgreSQL server's work is its own processes'. Instructions are not time (a cache miss
or a system call costs more than an instruction), so the timed benchmark stays the
figure of record.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import IMPLEMENTATIONS, POSTGRES_URL, Databases

DEFAULT = ("one-statement", "paymentorch-postgresql", "sqlite3", "paymentorch-sqlite",
           "paymentorch-memory")  # fmt: skip
PAIRS = {"paymentorch-postgresql": "one-statement", "paymentorch-sqlite": "sqlite3"}
WARM_UP = 200


async def _child(name: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Databases(POSTGRES_URL, Path(folder))
        try:
            await IMPLEMENTATIONS[name](db, WARM_UP, 1)
            await IMPLEMENTATIONS[name](db, count, 1)
        finally:
            db.drop()


def _collected(name: str, count: int) -> int:
    """The instructions a child running ``count`` lifecycles of ``name`` executed."""
    command = [
        *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable),
        *("-m", "benchmarks.instructions", "--child", name, str(count)),
    ]
    done = subprocess.run(  # noqa: S603 - this module, in this interpreter
        command, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dicts and sets in every child
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind said no count for {name}: {done.stderr[-500:]}")
    return int(found.group(1))


def per_lifecycle(name: str, count: int) -> float:
    """``name``'s instructions per lifecycle, over ``count`` lifecycles."""
    return (_collected(name, count) - _collected(name, 0)) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="lifecycles counted (default 500)")
    parser.add_argument("--only", nargs="*", choices=sorted(IMPLEMENTATIONS), default=DEFAULT)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_child(args.child[0], int(args.child[1])))
        return 0
    counts = {name: per_lifecycle(name, args.n) for name in args.only}
    print(f"{'implementation':<24}{'instructions per lifecycle':>28}{'ratio':>8}")
    for name, count in counts.items():
        base = counts.get(PAIRS.get(name, ""))
        ratio = f"{base / count:8.3f}" if base else ""
        print(f"{name:<24}{count:>28,.0f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
