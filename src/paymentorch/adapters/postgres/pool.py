"""The pool under each PostgreSQL store, and how the store's work runs on it.

``PostgresPool`` opens a psycopg_pool pool (or checks a host's), and runs each call of
the store on one of its connections within the call's limits (see ``connection``):
a write once more when the server says it never ran, a read again after a lost
connection, and, after ``fork()``, on a new pool of the child's own. The blocking
twin's pool is generated from this module, with psycopg's synchronous pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self, TypeVar, cast

import psycopg
import psycopg_pool

from paymentorch import _deadline, _fork
from paymentorch.adapters.postgres.connection import (
    NEVER_RAN,
    UTC_NAMES,
    Call,
    Settings,
    bounded,
    checked_out,
    connect_errors,
    connection_kwargs,
    found_closed,
    last_used_first,
    pool_kwargs,
    settings,
)
from paymentorch.adapters.postgres.statements import READ_RETRIES, SELECT, logger
from paymentorch.domain import FieldError, StoreUnavailable, ValidationError

T = TypeVar("T")


class PostgresPool:
    """A store's psycopg_pool pool, and the one way its calls run on it.

    ``settings`` (see ``open_store``) bound each call; a store built around a host's
    ``pool`` leaves it open when the store closes (``owns_pool=False``).
    """

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        settings: Settings | None = None,
        *,
        owns_pool: bool = True,
    ) -> None:
        self._pool = pool
        self._settings = settings or Settings(pool_timeout=pool.timeout)
        self._owns_pool = owns_pool
        self._connect_errors = connect_errors(pool)
        self._generation = _fork.generation

    @classmethod
    async def open(cls, conninfo: str, *, create_schema: bool = False, **options: Any) -> Self:
        """Open a pool with ``options`` (see ``open_store``); raise ``StoreUnavailable``
        within ``connect_timeout`` if the server is unreachable."""
        found = settings(**options)
        kwargs = connection_kwargs(conninfo, found)
        await _probe(conninfo, kwargs)
        if create_schema:
            from paymentorch._migrate import migrate  # noqa: PLC0415 - Alembic only when asked

            await migrate(conninfo)
        pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
            conninfo, kwargs=kwargs, open=False, name="paymentorch", **pool_kwargs(found)
        )
        last_used_first(pool)
        try:
            await pool.open(wait=True, timeout=found.connect_timeout)
        except psycopg_pool.PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL within {found.connect_timeout:g}s"
            ) from exc
        return await cls._checked(cls(pool, found))

    @classmethod
    async def around(
        cls, pool: psycopg_pool.AsyncConnectionPool[Any], *, deadline: object = None
    ) -> Self:
        """A store on a host's own open ``pool``, which it never closes."""
        if not isinstance(cast(object, pool), psycopg_pool.AsyncConnectionPool):
            message = f"must be a psycopg_pool.{psycopg_pool.AsyncConnectionPool.__name__}"
            raise ValidationError([FieldError("pool", message, "type")])
        if pool.closed:
            raise ValidationError([FieldError("pool", "must be open", "closed")])
        found = settings(deadline=deadline, pool_timeout=pool.timeout)
        store = await cls._checked(cls(pool, found, owns_pool=False))
        rows = await store._fetch("read the time zone", "SHOW TimeZone")
        if rows[0][0] not in UTC_NAMES:  # every time the store reads back must be UTC
            message = (
                f"its sessions' TimeZone is {rows[0][0]}: make it UTC (options=-c timezone=UTC)"
            )
            raise ValidationError([FieldError("pool", message, "timezone")])
        return store

    async def _checked(self) -> Self:
        try:
            await self._read("check the schema", lambda c: c.execute(SELECT + " LIMIT 0"))
        except BaseException:
            await self.aclose()
            raise
        return self

    @property
    def pool(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        """The connection pool (for maintenance and benchmarks)."""
        return self._pool

    async def _write(
        self, action: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """``work`` on a connection, within the call's limits; once more on a fresh
        connection when the server says it never ran (see ``connection``)."""
        if self._generation != _fork.generation:
            await self._reopen_in_child()
        call = Call(self._settings, self._pool, action, self._connect_errors)
        with call.errors():
            try:
                return await self._on_connection(call, work)
            except NEVER_RAN as exc:
                logger.info("PostgreSQL ended the session (%s); once more: %s", action, exc)
            return await self._on_connection(call, work)

    async def _on_connection(
        self, call: Call, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """``work`` on a connection from the pool that the server has not ended while it
        sat there, within what is left of the call's deadline."""
        pool = self._pool
        for _ in range(pool.max_size + 1):
            # getconn and putconn, not pool.connection(), which commits or rolls back on
            # the way out: the store's own autocommit connections never need it (a
            # transaction the work opens ends in the work).
            conn = await checked_out(pool, call.wait())
            try:
                if not found_closed(conn):
                    self._connect_errors = connect_errors(pool)
                    if conn.autocommit:
                        if (left := call.left()) is None:
                            return await work(conn)
                        async with bounded(conn, left):
                            return await work(conn)
                    # A host's pool without autocommit: each call is a transaction.
                    async with conn, bounded(conn, call.left()):
                        return await work(conn)
                await conn.close()  # never used: the pool makes another in its place
            finally:
                await pool.putconn(conn)
        raise StoreUnavailable(f"PostgreSQL ends every connection ({call.action})")

    async def _reopen_in_child(self) -> None:
        """After fork(): a pool of this process's own, configured as the inherited one."""
        old = self._pool
        _fork.abandon(old)
        self._pool = type(old)(
            old.conninfo,
            min_size=old.min_size,
            max_size=old.max_size,
            kwargs=old.kwargs,
            timeout=old.timeout,
            max_waiting=old.max_waiting,
            max_lifetime=old.max_lifetime,
            max_idle=old.max_idle,
            reconnect_timeout=old.reconnect_timeout,
            open=False,
            name=old.name,
        )
        last_used_first(self._pool)
        self._owns_pool = True
        self._generation = _fork.generation
        with Call(self._settings, self._pool, "reconnect after fork").errors():
            await self._pool.open(wait=True, timeout=old.timeout)

    async def _read(
        self, action: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """``_write`` again after a lost connection, a few times within the deadline (a
        read changes nothing); never after a limit was hit."""
        call = _deadline.begin()  # the retries share the deadline of this store call
        try:
            for delay in (*READ_RETRIES, None):
                try:
                    return await self._write(action, work)
                except StoreUnavailable as exc:
                    left = Call(self._settings, self._pool, action).left()
                    if (
                        delay is None
                        or self._pool.closed
                        or exc.limit is not None
                        or (left is not None and left <= delay)
                    ):
                        raise
                    logger.warning("PostgreSQL read failed (%s); retrying in %ss", action, delay)
                    await asyncio.sleep(delay)
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            _deadline.end(call)

    async def _fetch(
        self, action: str, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

        return await self._read(action, work)

    async def ping(self) -> None:
        """One round trip."""
        await self._write("ping", lambda conn: conn.execute("SELECT 1"))

    async def aclose(self) -> None:
        """Close the pool, unless the host gave it. Safe to call twice."""
        if self._owns_pool:
            await self._pool.close()


async def _probe(conninfo: str, kwargs: dict[str, Any]) -> None:
    """Connect once before the pool starts, so that a refusal (a database that does not
    exist, a wrong password) fails at once with the server's reason, where the pool would
    retry until its timeout and log every attempt."""
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, **kwargs)
    except psycopg.OperationalError as exc:
        message = str(exc).strip()
        reason = message.rpartition("FATAL:")[2].strip() if "FATAL:" in message else message
        raise StoreUnavailable(f"cannot connect to PostgreSQL: {reason}") from exc
    await conn.close()
