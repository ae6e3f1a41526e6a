"""Connection settings: checked at open, passed to psycopg_pool and libpq (the URL's own
libpq options kept), a host's own pool, and the deadline on every backend. The faults
themselves (restarts, idle cuts, held locks) are in ``test_faults.py``."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import paymentorch as po

ADMIN = po.Actor.system()


@pytest.mark.postgres  # the driver, not a server
async def test_bad_settings_are_listed_at_once() -> None:
    """Every setting out of range is named in one ValidationError, before any connection."""
    with pytest.raises(po.ValidationError) as caught:
        await po.open_service(
            "postgresql://nobody@127.0.0.1:1/none",
            pool_size=0,
            connect_timeout=-1,
            pool_timeout="5",
            max_waiting=-2,
            reconnect_timeout=timedelta(0),
            statement_timeout=float("inf"),
            lock_timeout=True,
            application_name="x" * 64,
            deadline=0,
        )
    assert sorted(e.field for e in caught.value.errors) == [
        "application_name", "connect_timeout", "deadline", "lock_timeout", "max_waiting",
        "pool_size", "pool_timeout", "reconnect_timeout", "statement_timeout",
    ]  # fmt: skip
    with pytest.raises(po.ValidationError, match="min_pool_size"):
        await po.open_service("postgresql://nobody@127.0.0.1:1/x", pool_size=2, min_pool_size=3)


async def test_a_bad_deadline_is_refused_on_every_backend() -> None:
    """memory and SQLite check ``deadline`` too."""
    for url in ("memory://", "sqlite:///:memory:"):
        with pytest.raises(po.ValidationError, match="deadline"):
            await po.open_service(url, deadline=-1)
    with pytest.raises(po.ValidationError, match="deadline"):
        po.open_sync_service("sqlite:///:memory:", deadline="soon")


def _show(store: Any, *names: str) -> list[str]:
    """What the store's own connections say of these settings."""

    async def run() -> list[str]:
        async with store.pool.connection() as conn:
            return [(await (await conn.execute(f"SHOW {n}")).fetchone())[0] for n in names]

    return run()  # type: ignore[return-value]


@pytest.mark.postgres
async def test_settings_reach_the_pool_and_the_server(postgres_database: str) -> None:
    """Timeouts and the application name reach each session, times as seconds or
    timedeltas; the pool gets its own settings; the session's time zone is UTC."""
    async with await po.open_service(
        postgres_database,
        pool_size=3,
        min_pool_size=1,
        pool_timeout=2,
        max_waiting=7,
        max_idle=timedelta(minutes=2),
        max_lifetime=900,
        reconnect_timeout=4.5,
        statement_timeout=2.5,
        lock_timeout=timedelta(seconds=1),
        application_name="orders-api",
    ) as service:
        store: Any = service.store
        assert await _show(store, "statement_timeout", "lock_timeout", "application_name",
                           "TimeZone") == ["2500ms", "1s", "orders-api", "UTC"]  # fmt: skip
        pool = store.pool
        assert (pool.min_size, pool.max_size, pool.timeout, pool.max_waiting) == (1, 3, 2, 7)
        assert (pool.max_idle, pool.max_lifetime, pool.reconnect_timeout) == (120, 900, 4.5)


@pytest.mark.postgres
async def test_a_quiet_host_keeps_using_one_connection(postgres_database: str) -> None:
    """The store's own pool hands out the connection returned last: calls made one at a
    time all run on one server process (psycopg_pool alone would go round all three),
    and calls made at once still spread over the pool; the blocking twin's too."""
    pids = "SELECT pg_backend_pid()"
    async with await po.open_service(postgres_database, pool_size=3) as service:
        store: Any = service.store
        one_at_a_time = {(await store._fetch("pid", pids))[0][0] for _ in range(9)}
        assert len(one_at_a_time) == 1
        all_held = asyncio.Barrier(3)
        at_once = await asyncio.gather(*(_held_pid(store, all_held) for _ in range(3)))
        assert len(set(at_once)) == 3
        payment = await service.create_payment("ABCD-12345", "4.00", actor=ADMIN)
        await service.confirm_payment(payment.id, actor=ADMIN)
        assert {(await store._fetch("pid", pids))[0][0] for _ in range(3)} <= set(at_once)
    with po.open_sync_service(postgres_database, pool_size=3) as twin:
        sync_store: Any = twin.store
        assert len({sync_store._fetch("pid", pids)[0][0] for _ in range(9)}) == 1


async def _held_pid(store: Any, all_held: asyncio.Barrier) -> int:
    """The server process of a connection, held until the others are held too."""
    async with store.pool.connection() as conn:
        pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
        await all_held.wait()
        return int(pid)


@pytest.mark.postgres
async def test_the_urls_own_options_are_kept(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``options`` and ``application_name`` in the URL win over the store's settings, and
    PGOPTIONS is kept when the URL has none; the time zone is UTC whatever they say."""
    options = urllib.parse.quote("-c statement_timeout=2000 -c TimeZone=Europe/Paris")
    url = f"{postgres_database}?options={options}&application_name=from-url"
    async with await po.open_service(url, statement_timeout=5, lock_timeout=3) as service:
        shown = await _show(
            service.store, "statement_timeout", "lock_timeout", "application_name", "TimeZone"
        )
        assert shown == ["2s", "3s", "from-url", "UTC"]
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1234")
    async with await po.open_service(postgres_database) as service:
        assert await _show(service.store, "lock_timeout", "statement_timeout") == ["1234ms", "0"]
        assert await _keepalives(service.store) == {
            "keepalives": "1", "keepalives_idle": "60", "keepalives_interval": "10",
            "keepalives_count": "6",
        }  # fmt: skip
    async with await po.open_service(f"{postgres_database}?keepalives_idle=30") as service:
        assert await _keepalives(service.store) == {"keepalives_idle": "30"}


async def _keepalives(store: Any) -> dict[str, str]:
    """The TCP keepalive settings of the store's connections."""
    async with store.pool.connection() as conn:
        found = conn.info.get_parameters()
    return {k: v for k, v in found.items() if k.startswith("keepalives")}


@pytest.mark.postgres
async def test_a_hosts_own_pool(postgres_database: str) -> None:
    """``pool=`` takes a host's open pool, leaves it open when the service closes, and
    refuses the settings that belong to the pool; the blocking twin takes psycopg_pool's
    ConnectionPool."""
    import psycopg_pool

    pool: Any = psycopg_pool.AsyncConnectionPool(
        postgres_database, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}
    )
    await pool.open()
    try:
        async with await po.open_service(postgres_database, pool=pool, deadline=5) as service:
            payment = await service.create_payment("ABCD-12345", "4.00", actor=ADMIN)
            confirmed = await service.confirm_payment(payment.id, actor=ADMIN)
            assert confirmed.status is po.PaymentStatus.CONFIRMED
        assert not pool.closed
        with pytest.raises(po.ValidationError) as caught:
            await po.open_service(postgres_database, pool=pool, pool_size=4, statement_timeout=1)
        assert [e.field for e in caught.value.errors] == ["pool_size", "statement_timeout"]
        with pytest.raises(po.ValidationError, match="pool"):
            po.open_sync_service(postgres_database, pool=pool)
    finally:
        await pool.close()
    paris: Any = psycopg_pool.AsyncConnectionPool(
        postgres_database, min_size=1, open=False, kwargs={"options": "-c timezone=Europe/Paris"}
    )
    await paris.open()
    try:
        with pytest.raises(po.ValidationError, match="Europe/Paris"):
            await po.open_service(postgres_database, pool=paris)
    finally:
        await paris.close()
    with psycopg_pool.ConnectionPool(
        postgres_database, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
    ) as blocking:
        with po.open_sync_service(postgres_database, pool=blocking) as twin:
            assert twin.get_payment(payment.id) == confirmed
        assert not blocking.closed


@pytest.mark.postgres
async def test_a_deadline_cuts_the_wait_for_a_busy_pool(postgres_database: str) -> None:
    """With every connection busy, a call waits no longer than its deadline, and says so."""
    async with await po.open_service(
        postgres_database, pool_size=1, pool_timeout=30, deadline=0.3
    ) as service:
        payment = await service.create_payment("ABCD-12345", "4.00", actor=ADMIN)
        async with service.store.pool.connection():  # type: ignore[attr-defined]
            with pytest.raises(po.StoreUnavailable, match="no connection was free") as caught:
                await service.get_payment(payment.id)
        assert caught.value.limit == "deadline"
        assert (await service.get_payment(payment.id)).id == payment.id


@pytest.mark.postgres
async def test_a_server_that_refuses_is_no_limit() -> None:
    """An unreachable server is StoreUnavailable with no limit named."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(po.StoreUnavailable) as caught:
        await po.open_service(f"postgresql://postgres@127.0.0.1:{port}/x", connect_timeout=1)
    assert caught.value.limit is None


@pytest.mark.parametrize(
    ("options", "limit"), [({"deadline": 0.2}, "deadline"), ({"busy_timeout": 0.2}, "busy_timeout")]
)
@pytest.mark.parametrize("twin", [False, True], ids=["async", "blocking"])
async def test_sqlite_waits_for_a_locked_file_within_its_deadline(
    tmp_path: Path, options: dict[str, Any], limit: str, twin: bool
) -> None:
    """Another process's write holds the file: a write waits its busy timeout, within the
    deadline, and the error names the one that ended it."""
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    opener: Any = functools.partial(po.open_sync_service if twin else po.open_service, url)
    service = opener(create_schema=True, **options)
    service = service if twin else await service
    call: Any = (lambda name, *a, **k: _now(getattr(service, name)(*a, **k))) if twin else (
        lambda name, *a, **k: getattr(service, name)(*a, **k)
    )  # fmt: skip
    try:
        payment = await call("create_payment", "ABCD-12345", "2.00", actor=ADMIN)
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(po.StoreUnavailable) as caught:
                await call("confirm_payment", payment.id, actor=ADMIN)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert caught.value.limit == limit
        assert (await call("confirm_payment", payment.id, actor=ADMIN)).version == 2
    finally:
        await (_now(service.close()) if twin else service.aclose())


async def _now(value: Any) -> Any:
    return value
