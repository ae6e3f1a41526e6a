"""Running implementations side by side: fresh state per run, rounds, medians, ratios."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import sqlalchemy as sa

import paymentorch as po
from benchmarks.baselines import Customers, Dicts, NaiveSql, OneStatement, Orm, Sqlite3
from paymentorch._migrate import migrate_sync

ADMIN = po.Actor("bench", roles={po.Role.ADMIN})
POSTGRES_URL = (
    os.environ.get("PAYMENTORCH_BENCH_POSTGRES_URL")
    or os.environ.get("PAYMENTORCH_TEST_POSTGRES_URL")
    or "postgresql://postgres@127.0.0.1:5432/test"
)
"""The server the benchmarks make their databases on (its user may create databases)."""
Work = Callable[[int, int], Awaitable[None]]  # (lifecycles, concurrency) -> done


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Databases:
    """A throwaway PostgreSQL database and a migrated SQLite template."""

    admin_url: str
    folder: Path
    pg_url: str = ""
    sqlite_template: Path = field(init=False)
    runs: int = 0

    def __post_init__(self) -> None:
        name = f"paymentorch_bench_{os.getpid()}"
        base = self.admin_url.rpartition("/")[0]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.pg_url = f"{base}/{name}"
        migrate_sync(self.pg_url)
        self.sqlite_template = self.folder / "template.db"
        migrate_sync(f"sqlite:///{self.sqlite_template}")

    def fresh_postgres(self) -> str:
        """Empty every table of the schema, the journal's and the keys' included (a fresh
        schema for the next run)."""
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    " AND tablename LIKE 'paymentorch%%'"
                    " AND tablename <> 'paymentorch_alembic_version'"
                )
            ]
            conn.execute(f"TRUNCATE {', '.join(tables)}")
        return self.pg_url

    def fresh_sqlite(self) -> str:
        """A new copy of the migrated SQLite file; returns its path."""
        self.runs += 1
        path = self.folder / f"run-{self.runs}.db"
        shutil.copy(self.sqlite_template, path)
        return str(path)

    def drop(self) -> None:
        """Remove the benchmark database."""
        name = self.pg_url.rpartition("/")[2]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Timed:
    """How long a run took: on the clock, and in this process's CPU (all its threads)."""

    seconds: float
    cpu: float


class Stopwatch:
    """Started when made; ``stop()`` gives what passed since, as ``Timed``."""

    def __init__(self) -> None:
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> Timed:
        return Timed(time.perf_counter() - self._start, time.process_time() - self._cpu)


async def split(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    """Run ``count`` lifecycles as ``concurrency`` tasks."""
    shares = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
    await asyncio.gather(*(one(share) for share in shares if share))


async def threads(count: int, concurrency: int, one: Callable[[int], None]) -> None:
    """Run ``count`` lifecycles on ``concurrency`` threads."""
    shares = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
    errors: list[BaseException] = []

    def run(share: int) -> None:
        try:
            one(share)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def all_threads() -> None:
        workers = [threading.Thread(target=run, args=(s,)) for s in shares if s]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    await asyncio.to_thread(all_threads)
    if errors:
        raise errors[0]


def _lifecycles(service: po.PaymentService) -> Callable[[int], Awaitable[None]]:
    customers = Customers()  # each lifecycle its own, as the baselines' have

    async def one(count: int) -> None:
        for _ in range(count):
            payment = await service.create_payment(customers.next(), "125.50", actor=ADMIN)
            await service.confirm_payment(payment.id, actor=ADMIN)

    return one


def _sync_lifecycles(service: po.SyncPaymentService) -> Callable[[int], None]:
    customers = Customers()

    def one(count: int) -> None:
        for _ in range(count):
            payment = service.create_payment(customers.next(), "125.50", actor=ADMIN)
            service.confirm_payment(payment.id, actor=ADMIN)

    return one


Implementation = Callable[[Databases, int, int], Awaitable[Timed]]
"""(databases, lifecycles, concurrency) -> time taken, on fresh state."""


def _psycopg(baseline: type[NaiveSql | OneStatement]) -> Implementation:
    async def run(db: Databases, count: int, concurrency: int) -> Timed:
        pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
            db.fresh_postgres(),
            min_size=concurrency,
            max_size=concurrency,
            kwargs={"autocommit": True},
            open=False,
        )
        await pool.open(wait=True)
        try:
            lifecycles = baseline(pool).lifecycles
            watch = Stopwatch()
            await split(count, concurrency, lifecycles)
            return watch.stop()
        finally:
            await pool.close()

    return run


async def orm(db: Databases, count: int, concurrency: int) -> Timed:
    url = db.fresh_postgres().replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, pool_size=concurrency, max_overflow=0)
    try:
        warm = Orm(engine)
        await threads(concurrency, concurrency, lambda _: warm.lifecycles(1))  # connect all
        db.fresh_postgres()
        baseline = Orm(engine)  # its customers from the first again
        watch = Stopwatch()
        await threads(count, concurrency, baseline.lifecycles)
        return watch.stop()
    finally:
        engine.dispose()


async def sqlite3_baseline(db: Databases, count: int, concurrency: int) -> Timed:
    baseline = Sqlite3(db.fresh_sqlite())
    try:
        watch = Stopwatch()
        await threads(count, concurrency, baseline.lifecycles)
        return watch.stop()
    finally:
        baseline.close()


async def dicts(db: Databases, count: int, concurrency: int) -> Timed:
    baseline = Dicts()
    watch = Stopwatch()
    await split(count, concurrency, baseline.lifecycles)
    return watch.stop()


def _service(
    url: Callable[[Databases], str], *, local_cache: bool = False, default_pool: bool = False
) -> Implementation:
    """The service on ``url``; on PostgreSQL with a pool as large as the tasks, like the
    baselines' (``default_pool``: the default 10)."""

    async def run(db: Databases, count: int, concurrency: int) -> Timed:
        options: dict[str, Any] = {"cache": po.LocalCache()} if local_cache else {}
        if "postgresql" in (target := url(db)) and not default_pool:
            options["pool_size"] = concurrency
        async with await po.open_service(target, **options) as service:
            watch = Stopwatch()
            await split(count, concurrency, _lifecycles(service))
            return watch.stop()

    return run


def _sync_service(url: Callable[[Databases], str]) -> Implementation:
    async def run(db: Databases, count: int, concurrency: int) -> Timed:
        target = url(db)
        extra = {"pool_size": concurrency} if "postgresql" in target else {}
        service = await asyncio.to_thread(po.open_sync_service, target, **extra)
        try:
            watch = Stopwatch()
            await threads(count, concurrency, _sync_lifecycles(service))
            return watch.stop()
        finally:
            await asyncio.to_thread(service.close)

    return run


IMPLEMENTATIONS: dict[str, Implementation] = {
    "one-statement": _psycopg(OneStatement),
    "naive-sql": _psycopg(NaiveSql),
    "orm": orm,
    "sqlite3": sqlite3_baseline,
    "dicts": dicts,
    "paymentorch-memory": _service(lambda db: "memory://"),
    "paymentorch-sqlite": _service(lambda db: f"sqlite:///{db.fresh_sqlite()}"),
    "paymentorch-postgresql": _service(lambda db: db.fresh_postgres()),
    # One process owning the database may cache locally: a transition then skips its read.
    "postgresql-localcache": _service(lambda db: db.fresh_postgres(), local_cache=True),
    "postgresql-pool10": _service(lambda db: db.fresh_postgres(), default_pool=True),
    "sync-memory": _sync_service(lambda db: "memory://"),
    "sync-sqlite": _sync_service(lambda db: f"sqlite:///{db.fresh_sqlite()}"),
    "sync-postgresql": _sync_service(lambda db: db.fresh_postgres()),
}


@dataclass
class Series:
    """Lifecycles per second of one implementation and mode, one figure per round."""

    name: str
    mode: str
    rates: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # client CPU per lifecycle

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def ratio(a: Series, b: Series) -> dict[str, float]:
    """Median and range of a/b over rounds (paired: same round, same conditions)."""
    values = [x / y for x, y in zip(a.rates, b.rates, strict=True)]
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }
