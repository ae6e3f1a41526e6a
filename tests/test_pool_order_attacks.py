"""Attacks on the store's last-used-first pool, getconn/putconn, and the one order of due
work: server-ended connections at the bottom of the stack, cancellations, errors inside
work, expiry and shrinking, fork(), racing threads, a host's own pool, and workers on
two services taking due installments."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import paymentorch as po
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.plans import PlanTerms
from paymentorch.testing import Backend
from tests.children import forked
from tests.servers import PrivatePostgres, private_postgres

pytestmark = pytest.mark.once  # attacks on this release's pool

ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})
CUSTOMER = "ABCD-12345"
SLEEP = "SELECT pg_sleep(0.5)"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as found:
        yield found


def _sessions(url: str, state: str | None = None) -> int:
    import psycopg

    database = url.rpartition("/")[2]
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    params: list[Any] = [database]
    if state is not None:
        sql += " AND state = %s"
        params.append(state)
    base = url.rpartition("/")[0] + "/postgres"
    with psycopg.connect(base, autocommit=True) as conn:
        return int(conn.execute(sql, params).fetchone()[0])  # type: ignore[index]


async def _all_back(pool: Any, size: int) -> dict[str, int]:
    """Every connection idle in the pool (its workers may still be replacing some)."""
    from psycopg.pq import TransactionStatus

    deadline = time.monotonic() + 10
    while True:
        stats = pool.get_stats()
        if stats["pool_available"] == size and stats["pool_size"] == size:
            break
        assert time.monotonic() < deadline, stats
        await asyncio.sleep(0.02)  # polling the pool's background workers
    assert {c.pgconn.transaction_status for c in pool._pool} == {TransactionStatus.IDLE}
    return dict(stats)


def _on_threads(run: Callable[[int], None], count: int) -> None:
    """``run(n)`` for each n below ``count``, each on a thread of its own; wait for all."""
    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


async def _lifecycles(service: po.PaymentService, prefix: str, n: int) -> list[Any]:
    async def one(i: int) -> Any:
        key = f"{prefix}-{i}"
        p = await service.create_payment(CUSTOMER, "3.00", actor=ADMIN, idempotency_key=key)
        return await service.confirm_payment(p.id, actor=ADMIN)

    return await asyncio.gather(*(one(i) for i in range(n)))


# -- a server-ended connection at the bottom of the stack --------------------------------


@pytest.mark.faults
async def test_bottom_of_the_stack_ended_by_idle_session_timeout(server: PrivatePostgres) -> None:
    """One caller keeps the top connection busy while the server ends the other five
    (idle_session_timeout 0.3 s); then a burst of 30 lifecycles takes them all: no error,
    every payment written once."""
    url = server.database()
    server.execute(f"ALTER DATABASE {url.rpartition('/')[2]} SET idle_session_timeout = '300ms'")
    async with await po.open_service(url, pool_size=6) as service:
        store: Any = service.store
        assert _sessions(url) == 6
        pids: set[int] = set()
        deadline = time.monotonic() + 15
        while _sessions(url) > 1:  # one hot connection; the server ends the idle ones
            pids.add((await store._fetch("pid", "SELECT pg_backend_pid()"))[0][0])
            assert time.monotonic() < deadline
        assert len(pids) == 1
        before = store.pool.get_stats()["connections_num"]
        done = await _lifecycles(service, "burst", 30)
        made = store.pool.get_stats()["connections_num"] - before
        print(f"connections made after the idle cut: {made}")
        assert made >= 5  # the five ended ones were met and replaced
        assert [p.status for p in done] == [po.PaymentStatus.CONFIRMED] * 30
        assert await service.count_payments() == 30
        assert await service.count_payments(status=po.PaymentStatus.CONFIRMED) == 30
        assert (await service.verify()).ok
        stats = store.pool.get_stats()
        assert stats.get("connections_lost", 0) == 0


# -- cancellations ----------------------------------------------------------------------


@pytest.mark.postgres
async def test_a_cancellation_as_the_connection_arrives_still_cancels(
    postgres_database: str,
) -> None:
    """psycopg_pool waits for a connection with asyncio.wait_for, which on Python 3.11
    drops a cancellation that arrives in the same turn as the connection: a call
    cancelled there is cancelled all the same, and its connection goes back. The cancel
    comes 0 to 11 turns of the loop after the connection is handed over, so one of them
    lands in that turn."""
    async with await po.open_service(postgres_database, pool_size=1) as service:
        store: Any = service.store
        pool = store.pool
        swallowed = []
        for turns in range(12):
            held = await pool.getconn()
            call = asyncio.create_task(store._write("ping", lambda c: c.execute("SELECT 1")))
            deadline = time.monotonic() + 5
            while pool.get_stats().get("requests_waiting", 0) == 0:
                await asyncio.sleep(0)  # until the call waits for the held connection
                assert time.monotonic() < deadline
            await pool.putconn(held)
            for _ in range(turns):
                await asyncio.sleep(0)
            requested = call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
                swallowed += [turns] if requested else []
            await _all_back(pool, 1)
        assert swallowed == []


@pytest.mark.postgres
async def test_cancelled_while_waiting_and_mid_statement(postgres_database: str) -> None:
    """Eight sleeps on a pool of two under asyncio.timeout (two mid-statement, six waiting),
    then eight cancelled by hand, then 40 creations cut at random moments: every connection
    comes back idle, nothing runs on the server, and the keys repeated write each once."""
    async with await po.open_service(postgres_database, pool_size=2) as service:
        store: Any = service.store

        async def sleep_within(seconds: float) -> None:
            async with asyncio.timeout(seconds):
                await store._write("sleep", lambda c: c.execute(SLEEP))

        got = await asyncio.gather(*(sleep_within(0.1) for _ in range(8)), return_exceptions=True)
        assert [type(e) for e in got] == [TimeoutError] * 8
        await _all_back(store.pool, 2)
        assert _sessions(postgres_database, "active") == 0

        tasks = [asyncio.create_task(store._write("sleep", lambda c: c.execute(SLEEP)))]
        tasks += [asyncio.create_task(store._write("sleep", lambda c: c.execute(SLEEP)))]
        tasks += [
            asyncio.create_task(store._write("sleep", lambda c: c.execute(SLEEP))) for _ in range(6)
        ]
        deadline = time.monotonic() + 5
        while _sessions(postgres_database, "active") < 2:
            await asyncio.sleep(0.01)  # polling for both sleeps to run on the server
            assert time.monotonic() < deadline
        for task in tasks:
            task.cancel()
        got = await asyncio.gather(*tasks, return_exceptions=True)
        assert [type(e) for e in got] == [asyncio.CancelledError] * 8
        await _all_back(store.pool, 2)
        assert _sessions(postgres_database, "active") == 0

        rng = random.Random(7)

        async def create_cut(i: int) -> type[BaseException] | None:
            try:
                async with asyncio.timeout(rng.uniform(0.0005, 0.01)):
                    await service.create_payment(
                        CUSTOMER, "2.00", actor=ADMIN, idempotency_key=f"cut-{i}"
                    )
                    await asyncio.sleep(10)  # only a cut ends this
            except TimeoutError as exc:
                return type(exc)
            return None

        cut = await asyncio.gather(*(create_cut(i) for i in range(40)))
        assert cut == [TimeoutError] * 40
        await _all_back(store.pool, 2)
        for i in range(40):  # the client repeats each request with its key
            await service.create_payment(CUSTOMER, "2.00", actor=ADMIN, idempotency_key=f"cut-{i}")
        assert await service.count_payments() >= 40
        keys = await store._fetch(
            "keys",
            "SELECT count(*), count(DISTINCT idempotency_key) FROM paymentorch_payments"
            " WHERE idempotency_key LIKE 'cut-%%'",
        )
        assert keys[0] == (40, 40)
        assert (await service.verify()).ok
        await _all_back(store.pool, 2)


@pytest.mark.postgres
async def test_deadline_cuts_leave_the_pool_whole(postgres_database: str) -> None:
    """Eight sleeps at once on a pool of two past the store's deadline of 0.2 s: each says
    deadline; then every connection is back idle and 10 lifecycles succeed."""
    async with await po.open_service(postgres_database, pool_size=2, deadline=0.2) as service:
        store: Any = service.store
        got = await asyncio.gather(
            *(store._write("sleep", lambda c: c.execute(SLEEP)) for _ in range(8)),
            return_exceptions=True,
        )
        assert [getattr(e, "limit", e) for e in got] == ["deadline"] * 8
        await _all_back(store.pool, 2)
        assert _sessions(postgres_database, "active") == 0
        done = await _lifecycles(service, "after-deadline", 10)
        assert len(done) == 10
        await _all_back(store.pool, 2)


# -- errors inside work -----------------------------------------------------------------


@pytest.mark.postgres
async def test_errors_in_work_leave_the_connection_clean(postgres_database: str) -> None:
    """A key held with other terms, a credit refusal and a bulk creation refused halfway,
    each followed at once by a write on the same (hot) connection: no transaction left
    open, nothing half-written, every connection idle."""
    credit = CreditPolicy(limit=Decimal("50.00"), currency="USD")
    async with await po.open_service(postgres_database, pool_size=2, credit=credit) as service:
        store: Any = service.store
        customer = f"CRED-{random.randrange(10**5):05d}"
        held = await service.create_payment(customer, "10.00", actor=ADMIN, idempotency_key="k1")
        for _ in range(3):
            with pytest.raises(po.IdempotencyConflict):
                await service.create_payment(customer, "11.00", actor=ADMIN, idempotency_key="k1")
            await _all_back(store.pool, 2)
            with pytest.raises(po.CreditLimitExceeded):
                await service.create_payment(customer, "45.00", actor=ADMIN)
            await _all_back(store.pool, 2)
            items = [po.NewPayment(customer, "1.00", idempotency_key=f"b-{i}") for i in range(5)]
            items.append(po.NewPayment(customer, "2.00", idempotency_key="k1"))
            with pytest.raises(po.IdempotencyConflict):
                await service.create_payments(items, actor=ADMIN)
            await _all_back(store.pool, 2)
            assert _sessions(postgres_database, "idle in transaction") == 0
            assert await service.count_payments(customer_id=customer) == 1
        confirmed = await service.confirm_payment(held.id, actor=ADMIN)
        assert confirmed.status is po.PaymentStatus.CONFIRMED
        made = await service.create_payments(
            [po.NewPayment(customer, "1.00", idempotency_key=f"b-{i}") for i in range(5)],
            actor=ADMIN,
        )
        assert len(made) == 5
        assert await service.count_payments(customer_id=customer) == 6
        assert (await service.verify()).ok


# -- expiry and shrinking ----------------------------------------------------------------


@pytest.mark.postgres
async def test_expiring_and_shrinking_pool_costs_no_caller(postgres_database: str) -> None:
    """max_lifetime 0.4 s, pool 6 down to 1 after 0.3 s idle: bursts of 12 lifecycles for
    1.5 s, then one caller until the pool shrank to one: no error, counts exact."""
    async with await po.open_service(
        postgres_database, pool_size=6, min_pool_size=1, max_idle=0.3, max_lifetime=0.4
    ) as service:
        store: Any = service.store
        rounds = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            done = await _lifecycles(service, f"life-{rounds}", 12)
            assert len(done) == 12
            rounds += 1
        grown = store.pool.get_stats()
        calls = 0
        deadline = time.monotonic() + 15
        while store.pool.get_stats()["pool_size"] > 1:
            await service.create_payment(CUSTOMER, "1.00", actor=ADMIN)
            calls += 1
            assert time.monotonic() < deadline, store.pool.get_stats()
        stats = store.pool.get_stats()
        print(f"rounds {rounds}, quiet calls {calls}, grown {grown}, shrunk {stats}")
        assert grown["connections_num"] > 6  # connections expired and were replaced
        assert stats.get("returns_bad", 0) == 0
        assert await service.count_payments(status=po.PaymentStatus.CONFIRMED) >= 12 * rounds
        confirmed = await store._fetch(
            "n",
            "SELECT count(*) FROM paymentorch_payments WHERE idempotency_key LIKE 'life-%%'"
            " AND status = 'Confirmed'",
        )
        assert confirmed[0][0] == 12 * rounds
        assert (await service.verify()).ok


# -- fork -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_its_own_last_used_first_pool(postgres_database: str) -> None:
    """The blocking twin opened in the parent: the child's first call opens a pool of its
    own, last-used-first (nine calls one at a time on one server process, not one of
    the parent's), and a lifecycle works; the parent's pool stays whole."""
    with po.open_sync_service(postgres_database, pool_size=3) as service:
        store: Any = service.store
        parent = {store._fetch("pid", "SELECT pg_backend_pid()")[0][0] for _ in range(3)}

        def child() -> int:
            made = service.create_payment(CUSTOMER, "2.00", actor=ADMIN)
            service.confirm_payment(made.id, actor=ADMIN)
            kind = type(store.pool._pool).__name__
            seen = {store._fetch("pid", "SELECT pg_backend_pid()")[0][0] for _ in range(9)}
            return 0 if (kind, len(seen), seen & parent) == ("_Stack", 1, set()) else 3

        assert forked(child) == 0
        assert type(store.pool._pool).__name__ == "_Stack"
        after = {store._fetch("pid", "SELECT pg_backend_pid()")[0][0] for _ in range(9)}
        assert len(after) == 1
        assert after <= parent
        assert store.pool.get_stats()["pool_available"] == 3


# -- the blocking twin from eight threads ------------------------------------------------


@pytest.mark.postgres
def test_eight_threads_race_confirm_and_cancel(postgres_database: str) -> None:
    """Four threads confirm and four cancel the same 40 payments, each in its own order:
    exactly one winner per payment, the statuses agree, every connection back idle."""
    with po.open_sync_service(postgres_database, pool_size=4) as service:
        store: Any = service.store
        customer = f"RACE-{random.randrange(10**5):05d}"
        ids = [service.create_payment(customer, "5.00", actor=ADMIN).id for _ in range(40)]
        start = threading.Barrier(8)
        wins: Counter[tuple[str, Any]] = Counter()
        errors: list[BaseException] = []
        lock = threading.Lock()

        def run(n: int) -> None:
            order = ids[:]
            random.Random(n).shuffle(order)
            act = service.confirm_payment if n % 2 else service.cancel_payment
            start.wait()
            for pid in order:
                try:
                    act(pid, actor=ADMIN)
                except po.InvalidTransition:
                    continue
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    continue
                with lock:
                    wins[("confirm" if n % 2 else "cancel", pid)] += 1

        _on_threads(run, 8)
        assert errors == []
        per_payment = Counter(pid for _, pid in wins.elements())
        assert sorted(per_payment.values()) == [1] * 40
        confirms = sum(1 for kind, _ in wins if kind == "confirm")
        confirmed = service.count_payments(customer_id=customer, status=po.PaymentStatus.CONFIRMED)
        cancelled = service.count_payments(customer_id=customer, status=po.PaymentStatus.CANCELLED)
        assert (confirmed, cancelled) == (confirms, 40 - confirms)
        stats = store.pool.get_stats()
        assert (stats["pool_available"], stats["pool_size"]) == (4, 4)
        assert service.verify().ok


# -- a host's own pool ------------------------------------------------------------------


@pytest.mark.postgres
async def test_a_hosts_own_pool_stays_first_in_first_out(postgres_database: str) -> None:
    """A pool the host passes keeps psycopg_pool's order: nine calls one at a time go
    round its three connections three times, in the same order each time."""
    import psycopg_pool

    pool = psycopg_pool.AsyncConnectionPool(
        postgres_database,
        min_size=3,
        max_size=3,
        kwargs={"autocommit": True, "options": "-c timezone=UTC"},
        open=False,
    )
    await pool.open(wait=True)
    try:
        async with await po.open_service(postgres_database, pool=pool) as service:
            store: Any = service.store
            assert type(pool._pool) is collections.deque
            seen = [(await store._fetch("pid", "SELECT pg_backend_pid()"))[0][0] for _ in range(9)]
            assert len(set(seen)) == 3
            assert seen[0:3] == seen[3:6] == seen[6:9]
            payment = await service.create_payment(CUSTOMER, "1.00", actor=ADMIN)
            await service.confirm_payment(payment.id, actor=ADMIN)
        assert not pool.closed
        assert pool.get_stats()["pool_available"] == 3
    finally:
        await pool.close()


# -- one order of due work --------------------------------------------------------------


async def _take_in_order(backend: Backend) -> list[int]:
    """Twelve plans made at one instant, half through each of two services on one store;
    both services' collections take three at a time, alternately. Returns the order
    taken, as creation indices; checks no installment is taken or collected twice."""
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    processor = po.testing.SimulatedProcessor(success_rate=1.0, latency=(0, 0), seed=3)
    first = await backend.open_store()
    second = first if backend.name == "memory" else await backend.open_store()
    options: dict[str, Any] = {"processor": processor, "clock": lambda: now[0]}
    services = [po.PaymentService(first, **options), po.PaymentService(second, **options)]
    try:
        made: list[Any] = []
        for i in range(12):
            service = services[i % 2]
            p = await service.create_payment(CUSTOMER, "100.00", actor=ADMIN, plan=PlanTerms())
            await service.confirm_payment(p.id, actor=ADMIN)
            made.append(p.id)
        index = {pid: i for i, pid in enumerate(made)}
        now[0] += timedelta(days=30)  # installments 2 and 3 due
        taken: list[Any] = []
        for number in (2, 3):
            due = await first.installments_due(now[0], 100)
            assert due == sorted(due, key=lambda d: (d[1], d[0]))
            order = list(dict.fromkeys(pid for pid, _ in due))
            assert order == sorted(made)
            turn = 0
            while queued := await services[turn % 2].collect_installments(limit=3):
                batch, order = order[:queued], order[queued:]
                taken += batch
                left = [pid for pid, _ in await first.installments_due(now[0], 100)]
                assert set(left) == set(order), number
                turn += 1
            assert order == []
            worker = po.PaymentWorker(services[0], batch_size=50)
            while await worker.run_once():
                pass
        for pid in made:
            ops = await services[1].operations(pid)
            numbers = Counter(o.installment for o in ops if o.kind.value == "installment")
            assert numbers == Counter({2: 1, 3: 1}), (backend.name, numbers)
        assert (await services[0].verify()).ok
        return [index[pid] for pid in taken]
    finally:
        for service in services:
            await service.aclose()


@pytest.mark.postgres
@pytest.mark.sqlite
@pytest.mark.memory
async def test_workers_take_due_installments_in_one_order_everywhere(
    memory_backend: Backend, sqlite_backend: Backend, postgres_backend: Backend
) -> None:
    orders = {b.name: await _take_in_order(b) for b in (memory_backend, sqlite_backend,
                                                         postgres_backend)}  # fmt: skip
    assert orders["memory"] == orders["sqlite"] == orders["postgresql"]
    assert sorted(orders["memory"]) == sorted(list(range(12)) * 2)


@pytest.mark.faults
async def test_a_shrinking_pool_over_ended_sessions_costs_no_caller(
    server: PrivatePostgres,
) -> None:
    """Pool 4 down to 1 after 0.2 s idle, the server ending sessions idle 0.3 s: a burst
    grows the pool, one caller until it shrank to one (shrinking closes the connection
    returned last, leaving the ended ones), a burst again: no error, counts exact."""
    url = server.database()
    server.execute(f"ALTER DATABASE {url.rpartition('/')[2]} SET idle_session_timeout = '300ms'")
    async with await po.open_service(url, pool_size=4, min_pool_size=1, max_idle=0.2) as service:
        store: Any = service.store
        assert len(await _lifecycles(service, "grow", 16)) == 16
        grown = store.pool.get_stats()["pool_size"]
        calls = 0
        deadline = time.monotonic() + 15
        while store.pool.get_stats()["pool_size"] > 1 or _sessions(url) > 1:
            await service.create_payment(CUSTOMER, "1.00", actor=ADMIN, idempotency_key=f"q{calls}")
            calls += 1
            assert time.monotonic() < deadline, store.pool.get_stats()
        assert len(await _lifecycles(service, "again", 16)) == 16
        print(f"grown to {grown}, quiet calls {calls}, then {store.pool.get_stats()}")
        assert grown == 4
        assert await service.count_payments(status=po.PaymentStatus.CONFIRMED) == 32
        assert await service.count_payments() == 32 + calls
        assert (await service.verify()).ok


@pytest.mark.faults
def test_the_twins_bottom_of_the_stack_ended_by_idle_session_timeout(
    server: PrivatePostgres,
) -> None:
    """The blocking twin: one thread keeps the top connection busy while the server ends
    the other five; then 8 threads write 5 lifecycles each: no error, 40 written once."""
    url = server.database()
    server.execute(f"ALTER DATABASE {url.rpartition('/')[2]} SET idle_session_timeout = '300ms'")
    with po.open_sync_service(url, pool_size=6) as service:
        store: Any = service.store
        assert _sessions(url) == 6
        deadline = time.monotonic() + 15
        while _sessions(url) > 1:
            store._fetch("pid", "SELECT pg_backend_pid()")
            assert time.monotonic() < deadline
        before = store.pool.get_stats()["connections_num"]
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def run(n: int) -> None:
            start.wait()
            for i in range(5):
                try:
                    key = f"t{n}-{i}"
                    p = service.create_payment(CUSTOMER, "4.00", actor=ADMIN, idempotency_key=key)
                    service.confirm_payment(p.id, actor=ADMIN)
                except BaseException as exc:
                    errors.append(exc)

        _on_threads(run, 8)
        assert errors == []
        made = store.pool.get_stats()["connections_num"] - before
        print(f"connections made after the idle cut: {made}")
        assert made >= 5  # the five ended ones were met and replaced
        assert service.count_payments(status=po.PaymentStatus.CONFIRMED) == 40
        assert service.count_payments() == 40
        assert service.verify().ok


@pytest.mark.postgres
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
async def test_an_async_service_opened_before_fork_works_in_the_child(
    postgres_database: str,
) -> None:
    """The async service opened in the parent, used in a forked child under a loop of its
    own: a pool of the child's own, last-used-first, and a lifecycle works."""
    async with await po.open_service(postgres_database, pool_size=3) as service:
        store: Any = service.store
        await _lifecycles(service, f"parent-{os.urandom(3).hex()}", 3)

        async def child() -> int:
            made = await service.create_payment(CUSTOMER, "2.00", actor=ADMIN)
            await service.confirm_payment(made.id, actor=ADMIN)
            kind = type(store.pool._pool).__name__
            seen = set()
            for _ in range(9):
                seen.add((await store._fetch("pid", "SELECT pg_backend_pid()"))[0][0])
            return 0 if (kind, len(seen)) == ("_Stack", 1) else 3

        # The child runs a loop of its own; the parent's waits (blocked) until it exits.
        assert forked(lambda: asyncio.run(child())) == 0
        await _lifecycles(service, f"after-{os.urandom(3).hex()}", 3)
        await _all_back(store.pool, 3)


def _rows_for(url: str, payment_id: Any) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        sql = "SELECT count(*) FROM paymentorch_payments WHERE id = %s"
        return int(conn.execute(sql, [payment_id]).fetchone()[0])  # type: ignore[index]


@pytest.mark.postgres
async def test_a_hosts_pool_without_autocommit_keeps_every_write(postgres_database: str) -> None:
    """A host's pool made with psycopg's default (autocommit off; the docs ask only for
    UTC): a payment the service says it created and confirmed is in the database."""
    import psycopg_pool

    pool = psycopg_pool.AsyncConnectionPool(
        postgres_database, min_size=1, max_size=2,
        kwargs={"options": "-c timezone=UTC"}, open=False,
    )  # fmt: skip
    await pool.open(wait=True)
    try:
        async with await po.open_service(postgres_database, pool=pool) as service:
            payment = await service.create_payment(CUSTOMER, "7.00", actor=ADMIN)
            confirmed = await service.confirm_payment(payment.id, actor=ADMIN)
            assert confirmed.status is po.PaymentStatus.CONFIRMED
            assert _rows_for(postgres_database, payment.id) == 1
            seen = await service.get_payment(payment.id)
            assert seen.status is po.PaymentStatus.CONFIRMED
    finally:
        await pool.close()


@pytest.mark.postgres
def test_a_hosts_blocking_pool_without_autocommit_keeps_every_write(
    postgres_database: str,
) -> None:
    """The blocking twin on a host's ConnectionPool with autocommit off."""
    import psycopg_pool

    with psycopg_pool.ConnectionPool(
        postgres_database, min_size=1, max_size=2, kwargs={"options": "-c timezone=UTC"}
    ) as pool, po.open_sync_service(postgres_database, pool=pool) as service:  # fmt: skip
        payment = service.create_payment(CUSTOMER, "7.00", actor=ADMIN)
        assert service.confirm_payment(payment.id, actor=ADMIN).status.value == "Confirmed"
        assert _rows_for(postgres_database, payment.id) == 1


@pytest.mark.postgres
async def test_bulk_creations_cut_mid_transaction_are_all_or_none(postgres_database: str) -> None:
    """30 bulk creations of 10, each cut at a random moment (some mid-transaction): each
    wrote all its 10 or none, every connection comes back idle, the books agree."""
    async with await po.open_service(postgres_database, pool_size=3) as service:
        store: Any = service.store
        rng = random.Random(11)
        tag = os.urandom(3).hex()

        async def bulk_cut(n: int) -> None:
            items = [
                po.NewPayment(CUSTOMER, "1.00", idempotency_key=f"bulk-{tag}-{n}-{i}")
                for i in range(10)
            ]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(rng.uniform(0.001, 0.2)):
                    await service.create_payments(items, actor=ADMIN)

        await asyncio.gather(*(bulk_cut(n) for n in range(30)))
        await _all_back(store.pool, 3)
        rows = await store._fetch(
            "bulk",
            "SELECT split_part(idempotency_key, '-', 3), count(*) FROM paymentorch_payments"
            " WHERE idempotency_key LIKE %s GROUP BY 1",
            [f"bulk-{tag}-%"],
        )
        sizes = Counter(count for _, count in rows)
        print(f"bulk creations kept whole: {sizes[10]}, none: {30 - len(rows)}")
        assert set(sizes) <= {10}
        assert _sessions(postgres_database, "idle in transaction") == 0
        assert (await service.verify()).ok
