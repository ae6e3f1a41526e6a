"""Faults against a private PostgreSQL and a private Redis that these tests start, stop,
cut and lock (never the machine's shared servers): availability comes back within
seconds, idle cuts cost no caller an error, every stall has a bound that names itself,
and the data is consistent after each (``_consistent``).

Marked ``faults``: the noxfile runs them on one Python only. Missing server binaries
skip them, or fail them with ``PAYMENTORCH_REQUIRE_SERVICES=1``. The outage of the
restart test lasts ``PAYMENTORCH_FAULT_OUTAGE`` seconds (3 by default).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import paymentorch as po
from paymentorch.adapters import open_store
from tests import children
from tests.servers import PrivatePostgres, private_postgres, private_redis

pytestmark = pytest.mark.faults

ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})
CUSTOMER = "ABCD-12345"


@pytest.fixture(scope="module")
def postgres() -> Any:
    """One private PostgreSQL for this module's tests (each takes a database of its own)."""
    with private_postgres() as server:
        yield server


def _consistent(url: str) -> dict[str, int]:
    """Status = last audit entry, version = number of entries, an event per entry, no key
    held twice, and money that adds up: the counts, every problem count 0."""
    import psycopg

    checks = {
        "status is not the last entry's": """
            SELECT count(*) FROM paymentorch_payments p WHERE p.status IS DISTINCT FROM (
              SELECT a.to_status FROM paymentorch_audit_entries a
              WHERE a.payment_id = p.id ORDER BY a.seq DESC LIMIT 1)""",
        "version is not the number of entries": """
            SELECT count(*) FROM paymentorch_payments p WHERE p.version <> (
              SELECT count(*) FROM paymentorch_audit_entries a WHERE a.payment_id = p.id)""",
        "events are not the entries": """
            SELECT count(*) FROM paymentorch_payments p WHERE (
              SELECT count(*) FROM paymentorch_audit_entries a WHERE a.payment_id = p.id) <> (
              SELECT count(*) FROM paymentorch_outbox o WHERE o.payment_id = p.id)""",
        "a key held twice": """
            SELECT count(*) FROM (SELECT 1 FROM paymentorch_payments
              WHERE idempotency_key IS NOT NULL
              GROUP BY idempotency_scope, idempotency_key HAVING count(*) > 1) AS twice""",
        "money that does not add up": """
            SELECT count(*) FROM paymentorch_payments WHERE NOT (
              captured_amount <= amount AND refunded_amount + pending_refunds <= captured_amount
              AND (status <> 'Confirmed' OR captured_amount = amount)
              AND (status <> 'Pending' OR captured_amount = 0))""",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        found = {name: conn.execute(sql).fetchone()[0] for name, sql in checks.items()}  # type: ignore[index]
        payments, confirmed, captured, amounts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'Confirmed'),"
            " coalesce(sum(captured_amount), 0),"
            " coalesce(sum(amount) FILTER (WHERE status = 'Confirmed'), 0)"
            " FROM paymentorch_payments"
        ).fetchone()  # type: ignore[misc]
    problems = {name: count for name, count in found.items() if count}
    assert problems == {}, f"inconsistent after the fault: {problems}"
    assert captured == amounts
    return {"payments": payments, "confirmed": confirmed}


class Lifecycles:
    """Tasks that create and confirm payments, each call repeated with its idempotency key
    until it succeeds: the outcome of every attempt is kept, with its time."""

    def __init__(self, service: po.PaymentService, tasks: int = 16) -> None:
        self.service = service
        self.tasks = tasks
        self.attempts: list[tuple[float, int, str]] = []  # (time, task, outcome)
        self.done = 0
        self._stop = asyncio.Event()

    async def _call(self, task: int, step: Callable[[], Any]) -> Any:
        while True:
            try:
                result = await step()
            except po.StoreUnavailable as exc:
                self.attempts.append((time.monotonic(), task, f"StoreUnavailable:{exc.limit}"))
                if self._stop.is_set():
                    return None
                await asyncio.sleep(0.05)  # a client's pause before it repeats
            else:
                self.attempts.append((time.monotonic(), task, "ok"))
                return result

    async def _run(self, task: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            key = f"task-{task}-{n}"
            payment = await self._call(
                task,
                lambda key=key: self.service.create_payment(  # type: ignore[misc]
                    CUSTOMER, "10.00", actor=ADMIN, idempotency_key=key
                ),
            )
            if payment is None:
                return
            confirmed = await self._call(
                task,
                lambda payment=payment, key=key: self.service.confirm_payment(  # type: ignore[misc]
                    payment.id, actor=ADMIN, idempotency_key=key
                ),
            )
            if confirmed is not None:
                self.done += 1

    async def __aenter__(self) -> Lifecycles:
        self._runners = [asyncio.create_task(self._run(i)) for i in range(self.tasks)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._runners)  # any error but StoreUnavailable surfaces here

    def errors(self, after: float = 0.0) -> Counter[str]:
        return Counter(o for t, _, o in self.attempts if o != "ok" and t >= after)

    def successes_after(self, moment: float) -> list[float]:
        """Each task's first success after ``moment``, in seconds after it."""
        first: dict[int, float] = {}
        for at, task, outcome in self.attempts:
            if outcome == "ok" and at >= moment and task not in first:
                first[task] = at - moment
        return sorted(first.values())

    async def until_done(self, more: int, seconds: float = 60) -> None:
        target, deadline = self.done + more, time.monotonic() + seconds
        while self.done < target:
            assert time.monotonic() < deadline, f"only {self.done} lifecycles done"
            await asyncio.sleep(0.01)  # polling the load's progress


async def _service(url: str, **options: Any) -> po.PaymentService:
    return await po.open_service(url, cache=None, **options)


# -- PostgreSQL ----------------------------------------------------------------------


async def test_a_restarted_postgres_serves_again_within_seconds(postgres: PrivatePostgres) -> None:
    """PostgreSQL stopped (fast: every session ended) and started again under 16 tasks of
    create-and-confirm: calls succeed again within a few seconds of its return, every
    error is StoreUnavailable, and the data is consistent."""
    outage = float(os.environ.get("PAYMENTORCH_FAULT_OUTAGE", "3"))
    url = postgres.database()
    async with await _service(url, pool_size=8) as service, Lifecycles(service) as load:
        await load.until_done(200)
        stopped = time.monotonic()
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(outage)  # the outage itself
        await asyncio.to_thread(postgres.start)
        back = time.monotonic()
        await load.until_done(200)
        recovered = load.successes_after(back)
    errors = load.errors(stopped)
    figures = {
        "outage s": round(back - stopped, 1),
        "first success after return s": round(recovered[0], 2),
        "every task again after s": round(recovered[-1], 2),
        "errors by kind": dict(errors),
        **_consistent(url),
    }
    print(f"PostgreSQL restarted under load: {figures}")
    assert len(recovered) == load.tasks
    assert recovered[-1] < 6, figures


def _sessions(postgres: PrivatePostgres, url: str) -> int:
    database = url.rpartition("/")[2]
    rows = postgres.execute(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'")
    return int(rows[0][0])


async def _until_no_sessions(postgres: PrivatePostgres, url: str) -> None:
    deadline = time.monotonic() + 30
    while _sessions(postgres, url):
        assert time.monotonic() < deadline, "the server never ended the sessions"
        await asyncio.sleep(0.05)  # polling the server's view of its sessions


async def _end_idle_sessions(postgres: PrivatePostgres, url: str) -> int:
    database = url.rpartition("/")[2]
    ended = postgres.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE datname = '{database}' AND state = 'idle'"
    )[0][0]
    await _until_no_sessions(postgres, url)
    return int(ended)


async def test_sessions_ended_while_idle_cost_no_write(postgres: PrivatePostgres) -> None:
    """Every idle session ended by the server (pg_terminate_backend, as a restarted pooler
    or a NAT would): the writes that follow, one at a time and then 16 at a time, see no
    error at all."""
    url = postgres.database()
    failures: list[BaseException] = []
    async with await _service(url, pool_size=8) as service:
        async with Lifecycles(service) as load:
            await load.until_done(100)
        ended = await _end_idle_sessions(postgres, url)
        for _ in range(20):
            try:
                payment = await service.create_payment(CUSTOMER, "5.00", actor=ADMIN)
                await service.confirm_payment(payment.id, actor=ADMIN)
            except po.StoreUnavailable as exc:
                failures.append(exc)
        ended += await _end_idle_sessions(postgres, url)
        async with Lifecycles(service) as load:
            await load.until_done(100)
    errors = len(failures) + load.errors().total()
    figures = {"sessions ended": ended, "errors": errors, **_consistent(url)}
    print(f"idle sessions ended, then writers one and 16 at a time: {figures}")
    assert ended >= 9
    assert failures == []
    assert load.errors() == Counter()


async def test_a_statement_the_server_ended_runs_once_more(postgres: PrivatePostgres) -> None:
    """A statement whose session the server ends while it runs (AdminShutdown: it did not
    commit) runs once more on a fresh connection, and the caller sees its result."""
    url = postgres.database()
    store = await open_store(url, pool_size=2)
    runs: list[int] = []

    async def slow(conn: Any) -> int:
        runs.append(len(runs))
        await conn.execute("SELECT pg_sleep(0.5)")
        return len(runs)

    async def end_the_sleeper() -> None:
        ended = 0
        while not ended:
            await asyncio.sleep(0.01)  # polling for the statement to start
            ended = postgres.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'"
            )[0][0]

    try:
        answer, _ = await asyncio.gather(store._write("sleep", slow), end_the_sleeper())  # type: ignore[attr-defined]
    finally:
        await store.aclose()
    assert (answer, runs) == (2, [0, 1])


async def test_an_idle_session_timeout_costs_no_write(postgres: PrivatePostgres) -> None:
    """The server ends sessions idle for 0.3 s (idle_session_timeout); a client writing
    less often than that never sees an error, nor does one writing 16 at a time."""
    url = postgres.database()
    database = url.rpartition("/")[2]
    postgres.execute(f"ALTER DATABASE {database} SET idle_session_timeout = '300ms'")
    failures: list[BaseException] = []
    async with await _service(url, pool_size=4) as service:
        for _ in range(5):
            await _until_no_sessions(postgres, url)  # every pooled connection timed out
            try:
                payment = await service.create_payment(CUSTOMER, "5.00", actor=ADMIN)
                await service.confirm_payment(payment.id, actor=ADMIN)
            except po.StoreUnavailable as exc:
                failures.append(exc)
        await _until_no_sessions(postgres, url)
        async with Lifecycles(service) as load:
            await load.until_done(50)
    figures = {"errors": len(failures) + load.errors().total(), **_consistent(url)}
    print(f"idle_session_timeout 0.3 s, a write after each timeout: {figures}")
    assert failures == []
    assert load.errors() == Counter()


@pytest.mark.parametrize(
    ("options", "limit"),
    [
        ({"statement_timeout": 1}, "statement_timeout"),
        ({"lock_timeout": timedelta(milliseconds=500)}, "lock_timeout"),
        ({"deadline": 1.5}, "deadline"),
        ({"deadline": 1.5, "twin": True}, "deadline"),
    ],
    ids=["statement_timeout", "lock_timeout", "deadline", "deadline-blocking"],
)
async def test_a_held_lock_stalls_a_write_no_longer_than_its_limit(
    postgres: PrivatePostgres, options: dict[str, Any], limit: str
) -> None:
    """A row locked by another transaction: the write waiting for it ends at the limit
    with a StoreUnavailable that names it (on the async service and the blocking twin),
    writes nothing, and goes through once the lock is released."""
    import psycopg

    url = postgres.database()
    twin = options.pop("twin", False)
    opener: Any = po.open_sync_service if twin else po.open_service
    service: Any = opener(url, cache=None, **options)
    if not twin:
        service = await service

    async def call(method: str, *args: Any, **kwargs: Any) -> Any:
        if twin:
            return await asyncio.to_thread(getattr(service, method), *args, **kwargs)
        return await getattr(service, method)(*args, **kwargs)

    try:
        payment = await call("create_payment", CUSTOMER, "7.00", actor=ADMIN)
        with psycopg.connect(url) as locker:
            locker.execute(
                "SELECT 1 FROM paymentorch_payments WHERE id = %s FOR UPDATE", (payment.id,)
            )
            started = time.monotonic()
            with pytest.raises(po.StoreUnavailable) as caught:
                await call("confirm_payment", payment.id, actor=ADMIN)
            stalled = time.monotonic() - started
            locker.rollback()
        assert (await call("get_payment", payment.id)).status is po.PaymentStatus.PENDING
        confirmed = await call("confirm_payment", payment.id, actor=ADMIN)
    finally:
        if twin:
            service.close()
        else:
            await service.aclose()
    print(f"a held lock, {limit}: stalled {stalled:.2f} s: {caught.value}")
    assert caught.value.limit == limit
    assert limit in str(caught.value)
    bound = 1.5 if limit == "deadline" else (1.0 if limit == "statement_timeout" else 0.5)
    assert bound * 0.9 <= stalled < bound + 1.0
    assert confirmed.status is po.PaymentStatus.CONFIRMED
    _consistent(url)


async def test_a_saturated_pool_says_so(postgres: PrivatePostgres) -> None:
    """Every connection busy: a call beyond ``max_waiting`` is refused at once, and the
    ones waiting give up after ``pool_timeout``; each says the pool is exhausted."""
    url = postgres.database()
    async with await _service(url, pool_size=2, max_waiting=2, pool_timeout=1) as service:
        payment = await service.create_payment(CUSTOMER, "3.00", actor=ADMIN)
        pool = service.store.pool  # type: ignore[attr-defined]
        async with pool.connection(), pool.connection():  # the whole pool, busy
            results = await asyncio.gather(
                *(service.get_payment(payment.id) for _ in range(3)), return_exceptions=True
            )
        assert (await service.get_payment(payment.id)).version == 1
    assert all(isinstance(r, po.StoreUnavailable) for r in results), results
    limits = sorted(r.limit for r in results)  # type: ignore[union-attr]
    assert limits == ["max_waiting", "pool_timeout", "pool_timeout"]
    refused = next(r for r in results if r.limit == "max_waiting")  # type: ignore[union-attr]
    assert "pool exhausted: 2 waiting (pool 'paymentorch', read a payment)" in str(refused)
    assert all("pool exhausted" in str(r) for r in results)
    print(f"a saturated pool: {[str(r) for r in results]}")
    _consistent(url)


# -- Redis ---------------------------------------------------------------------------


def _reader(url: str, redis_url: str, namespace: str) -> tuple[Any, Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=children.read_versions, args=(url, redis_url, namespace, child)
    )
    process.start()
    assert parent.recv() == "ready"
    return process, parent


def _stale(conn: Any, payments: list[po.Payment]) -> int:
    """How many of ``payments`` another process reads older than they are."""
    conn.send([p.id for p in payments])
    versions = conn.recv()
    return sum(read < p.version for read, p in zip(versions, payments, strict=True))


@pytest.mark.parametrize("writer", ["kept alive", "gone"])
async def test_redis_restarted_with_its_data_serves_nothing_stale(
    postgres: PrivatePostgres, writer: str
) -> None:
    """Redis (appendonly) stops while a writer confirms 20 cached payments, and comes back
    with the entries from before: a process that starts reading then (no connection of
    its own saw the restart) reads none of them stale, whether the writer is still alive
    but makes no call that would tell Redis, or gone, its process ended while Redis was
    away (then only Redis itself can say it restarted)."""
    url = postgres.database()
    namespace = f"f{os.urandom(4).hex()}"
    with private_redis(appendonly=True) as redis:
        cache = po.RedisCache(redis.url, namespace=namespace, local=False)
        reader = None
        try:
            async with await po.open_service(url, cache=cache) as service:
                created = [
                    await service.create_payment(CUSTOMER, "9.00", actor=ADMIN) for _ in range(20)
                ]
                assert [(await service.get_payment(p.id)).version for p in created] == [1] * 20
                redis.stop()
                if writer == "gone":
                    other = po.RedisCache(redis.url, namespace=namespace, local=False)
                    async with await po.open_service(url, cache=other) as elsewhere:
                        confirmed = [
                            await elsewhere.confirm_payment(p.id, actor=ADMIN) for p in created
                        ]
                    await other.aclose()
                else:
                    confirmed = [await service.confirm_payment(p.id, actor=ADMIN) for p in created]
                redis.start()
                reader = _reader(url, redis.url, namespace)
                after_restart = _stale(reader[1], confirmed)
                refunded = [
                    (await service.refund_payment(p.id, "1.00", actor=ADMIN), p)[1]
                    for p in confirmed[:5]
                ]
                later = _stale(reader[1], [await service.get_payment(p.id) for p in refunded])
        finally:
            if reader is not None:
                reader[1].send(None)
                reader[0].join(timeout=30)
            await cache.aclose()
    figures = {"stale after the restart": after_restart, "stale after more writes": later,
               **_consistent(url)}  # fmt: skip
    print(f"Redis restarted with its data, the writer {writer}: {figures}")
    assert (after_restart, later) == (0, 0)
    assert reader is not None
    assert reader[0].exitcode == 0


async def test_a_hung_redis_costs_writes_one_timeout(postgres: PrivatePostgres) -> None:
    """Redis hangs (SIGSTOP) while a writer confirms 20 payments: the breaker cuts its
    cache calls short after the first timeout; once Redis answers again the writer starts
    a new generation by itself, and another process reads nothing stale."""
    url = postgres.database()
    namespace = f"f{os.urandom(4).hex()}"
    with private_redis() as redis:
        cache = po.RedisCache(redis.url, namespace=namespace, local=False, timeout=0.5)
        process, conn = _reader(url, redis.url, namespace)
        try:
            async with await po.open_service(url, cache=cache) as service:
                created = [
                    await service.create_payment(CUSTOMER, "9.00", actor=ADMIN) for _ in range(20)
                ]
                assert _stale(conn, created) == 0
                generation = await _generation(redis.url, namespace)
                redis.pause()
                started = time.monotonic()
                confirmed = [await service.confirm_payment(p.id, actor=ADMIN) for p in created]
                hung = time.monotonic() - started
                redis.resume()
                resumed = time.monotonic()
                while await _generation(redis.url, namespace) == generation:
                    assert time.monotonic() - resumed < 5, "no new generation"
                    await asyncio.sleep(0.01)  # polling Redis for the writer's new generation
                window = time.monotonic() - resumed
                stale = _stale(conn, confirmed)
        finally:
            conn.send(None)
            process.join(timeout=30)
            await cache.aclose()
    figures = {"20 confirms while hung s": round(hung, 2), "stale": stale,
               "new generation after s": round(window, 2), **_consistent(url)}  # fmt: skip
    print(f"Redis hung under a writer: {figures}")
    assert hung < 20 * 0.5 / 4  # without the breaker, each cache call waits 0.5 s
    assert stale == 0
    assert window < 2


async def _generation(redis_url: str, namespace: str) -> bytes | None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    try:
        found: bytes | None = await client.get(f"{namespace}:gen")
        return found
    finally:
        await client.aclose()
