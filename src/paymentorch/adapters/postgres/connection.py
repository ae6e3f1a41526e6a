"""How the PostgreSQL stores hold their connections: settings, the limits on each call,
and the one seam where the driver's errors become paymentorch's.

- Settings are checked once, when the store opens (a ``ValidationError`` lists every
  problem), then passed to psycopg_pool and libpq. The URL's own libpq ``options`` (or
  ``PGOPTIONS``) and ``application_name`` are kept: the store's ``statement_timeout`` and
  ``lock_timeout`` come before the URL's options, so a setting there wins, and its time
  zone comes last, since every time it reads back must be UTC. TCP keepalives are on
  unless the URL sets its own, so that a NAT does not drop an idle pooled connection.
- A connection that ended while it sat in the pool (the server's idle timeout, a
  restart, a pooler that dropped it, keepalives that found the peer gone) has something
  to say before anything is sent on it: a readable socket. Such a connection is closed
  and another taken, so no caller pays.
- A statement answered with ``AdminShutdown`` or ``IdleSessionTimeout`` never committed
  (PostgreSQL sends those only for a transaction it aborted, or a session it ended while
  idle): the store runs it once more on a fresh connection. A connection lost in any
  other way after the statement was sent leaves its fate unknown: ``StoreUnavailable``.
- ``deadline`` bounds a whole service call: the wait for a connection, every statement
  (cancelled on the server when it runs past the deadline) and the retries.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import math
import os
import select
import threading
import time
from collections.abc import Iterator
from typing import Any, Final, Self

import attrs

from paymentorch import _deadline
from paymentorch.adapters._require import driver

driver("psycopg", "postgres")
driver("psycopg_pool", "postgres")

import psycopg  # noqa: E402 - after the check that names the extra
import psycopg_pool  # noqa: E402
from psycopg import errors as pg_errors  # noqa: E402

from paymentorch.domain import (  # noqa: E402
    FieldError,
    StoreError,
    StoreUnavailable,
    ValidationError,
)

logger = logging.getLogger("paymentorch.postgres")

NEVER_RAN: Final = (pg_errors.AdminShutdown, pg_errors.IdleSessionTimeout)
"""Answers that mean the statement did not commit: safe to run again, once."""
POOL_OPTIONS: Final = frozenset(
    {"pool_size", "min_pool_size", "pool_timeout", "max_waiting", "max_idle", "max_lifetime",
     "reconnect_timeout"}
)  # fmt: skip
CONNECTION_OPTIONS: Final = frozenset(
    {"connect_timeout", "statement_timeout", "lock_timeout", "application_name"}
)
"""What a store makes its own pool and connections with: not for a pool the host gives."""
KEEPALIVES: Final = {"keepalives": 1, "keepalives_idle": 60, "keepalives_interval": 10,
                     "keepalives_count": 6}  # fmt: skip
"""TCP keepalives unless the URL sets its own: an idle pooled connection sends a probe a
minute, which keeps a NAT's or a firewall's idle timer from dropping it, and a peer
gone silent is found (then never used) within two minutes."""
UTC_NAMES: Final = frozenset(
    {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}
)
"""The names PostgreSQL may report for a session in UTC."""
_NAME_LENGTH: Final = 63  # PostgreSQL keeps this many bytes of a name


@attrs.frozen
class Settings:
    """A PostgreSQL store's connection settings, in seconds (see ``settings``)."""

    pool_size: int = 10
    min_pool_size: int | None = None
    connect_timeout: float = 5.0
    pool_timeout: float | None = None
    max_waiting: int = 0
    max_idle: float = 600.0
    max_lifetime: float = 3600.0
    reconnect_timeout: float = 10.0
    statement_timeout: float | None = None
    lock_timeout: float | None = None
    application_name: str = "paymentorch"
    deadline: float | None = None

    @property
    def wait(self) -> float:
        """How long a call waits for a connection from the pool."""
        return self.connect_timeout if self.pool_timeout is None else self.pool_timeout


def settings(**options: Any) -> Settings:
    """Check ``options`` (times as seconds or ``timedelta``) and apply the defaults.

    Raises:
        ValidationError: every option that is out of range, at once.
    """
    errors: list[FieldError] = []
    checked: dict[str, Any] = {}
    for name, value in options.items():
        found, problem = (
            (None, None) if value is None and name in _OPTIONAL else _check(name, value)
        )
        if problem is not None:
            errors.append(FieldError(name, problem, "range"))
        else:
            checked[name] = found
    result = Settings(**checked) if not errors else Settings()
    if result.min_pool_size is not None and result.min_pool_size > result.pool_size:
        errors.append(FieldError("min_pool_size", "must not exceed pool_size", "range"))
    if errors:
        raise ValidationError(errors)
    return result


_WHOLE: Final = {"pool_size": 1, "min_pool_size": 0, "max_waiting": 0}
_OPTIONAL: Final = {
    "min_pool_size",
    "pool_timeout",
    "statement_timeout",
    "lock_timeout",
    "deadline",
}


def _check(name: str, value: object) -> tuple[Any, str | None]:
    """``value`` as the setting ``name`` keeps it, or what is wrong with it."""
    if name in _WHOLE:
        least = _WHOLE[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            return None, f"must be a whole number from {least}"
        return value, None
    if name == "application_name":
        if not isinstance(value, str) or not 1 <= len(value) <= _NAME_LENGTH:
            return None, f"must be 1 to {_NAME_LENGTH} printable ASCII characters"
        if not value.isascii() or not value.isprintable():
            return None, f"must be 1 to {_NAME_LENGTH} printable ASCII characters"
        return value, None
    number = _deadline.seconds(value)
    if number is None:
        return None, "must be seconds (a number or a timedelta) above 0"
    if name in ("statement_timeout", "lock_timeout") and number < 0.001:
        return None, "must be at least a millisecond"
    return number, None


def connection_kwargs(conninfo: str, found: Settings) -> dict[str, Any]:
    """What each connection is made with: autocommit, the options (the URL's or
    ``PGOPTIONS`` kept, with the store's timeouts before them and UTC after them), the
    application name unless the URL or ``PGAPPNAME`` has one, and the connect timeout
    unless the URL has one, and TCP keepalives unless the URL sets them."""
    try:
        given = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ValidationError([FieldError("url", str(exc), "url")]) from None
    theirs = str(given.get("options") or os.environ.get("PGOPTIONS", ""))
    ours = [
        f"-c {name}={max(1, round(value * 1000))}ms"
        for name, value in (
            ("statement_timeout", found.statement_timeout),
            ("lock_timeout", found.lock_timeout),
        )
        if value is not None
    ]
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "options": " ".join([*ours, theirs, "-c timezone=UTC"]).replace("  ", " ").strip(),
        "fallback_application_name": found.application_name,
    }
    if "connect_timeout" not in given:
        kwargs["connect_timeout"] = max(1, math.ceil(found.connect_timeout))
    if not any(name.startswith("keepalives") for name in given):
        kwargs.update(KEEPALIVES)
    return kwargs


def pool_kwargs(found: Settings) -> dict[str, Any]:
    """psycopg_pool's own settings."""
    return {
        "min_size": found.pool_size if found.min_pool_size is None else found.min_pool_size,
        "max_size": found.pool_size,
        "timeout": found.wait,
        "max_waiting": found.max_waiting,
        "max_idle": found.max_idle,
        "max_lifetime": found.max_lifetime,
        "reconnect_timeout": found.reconnect_timeout,
    }


class _Stack(collections.deque[Any]):
    """Idle connections, the one returned last taken first."""

    def popleft(self) -> Any:
        return self.pop()


def last_used_first(pool: Any) -> None:
    """Make the store's own ``pool`` hand out the connection returned last.

    psycopg_pool hands out the one idle longest, so a host calling one at a time goes
    round every connection of the pool, each with its own server process and caches:
    a lifecycle took a fifth to a third longer with the default 10 than with 1. Taken
    last-used-first, a quiet host keeps using the same few. psycopg_pool has no option
    for it: this replaces its private deque of idle connections (a shrinking pool then
    closes the one returned last, not the one idle longest), and does nothing should
    that deque ever be gone. A host's own pool is left as it is.
    """
    idle = getattr(pool, "_pool", None)
    if type(idle) is collections.deque:
        pool._pool = _Stack(idle)


async def checked_out(
    pool: psycopg_pool.AsyncConnectionPool[Any], wait: float
) -> psycopg.AsyncConnection[Any]:
    """``pool.getconn(timeout=wait)``, or the cancellation it swallowed.

    psycopg_pool waits for a connection with ``asyncio.wait_for``, which on Python 3.11
    returns the connection it got at the moment its task is cancelled, and drops the
    cancellation (fixed in 3.12): a call cut short by ``asyncio.timeout`` would run on,
    and the timeout never fire. The task's count of cancellations tells: the connection
    goes back and the cancellation goes up.
    """
    task = asyncio.current_task()
    before = 0 if task is None else task.cancelling()
    conn: psycopg.AsyncConnection[Any] = await pool.getconn(timeout=wait)
    if task is not None and task.cancelling() > before:
        await pool.putconn(conn)
        raise asyncio.CancelledError
    return conn


def checked_out_sync(
    pool: psycopg_pool.ConnectionPool[Any], wait: float
) -> psycopg.Connection[Any]:
    """``checked_out`` for the blocking twin, which no task cancels."""
    conn: psycopg.Connection[Any] = pool.getconn(timeout=wait)
    return conn


def found_closed(conn: psycopg.BaseConnection[Any]) -> bool:
    """Whether the server ended this connection while it sat idle in the pool.

    An idle connection has nothing to read, unless the server said goodbye (a FATAL
    message, or the end of the stream): such a connection is never used.
    """
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


@attrs.define
class Call:
    """One store call's limits, from its start (or its service call's): the deadline, the
    pool's wait, and the messages that say which was hit."""

    settings: Settings
    pool: Any
    action: str
    connect_errors: int = 0  # the pool's failed connects when the store last got one
    start: float = attrs.field(factory=_deadline.started)
    cut_short: bool = False  # the pool's wait was cut to what was left of the deadline

    def left(self) -> float | None:
        """Seconds left of the deadline (None: no deadline)."""
        deadline = self.settings.deadline
        return None if deadline is None else deadline - (time.monotonic() - self.start)

    def wait(self) -> float:
        """How long to wait for a connection now."""
        left, wait = self.left(), self.settings.wait
        if left is not None and left <= 0:
            raise self.past_deadline("no time was left to take a connection")
        self.cut_short = left is not None and left < wait
        return wait if left is None else min(wait, left)

    def past_deadline(self, what: str) -> StoreUnavailable:
        """The error for a call that ran out of its deadline."""
        return StoreUnavailable(
            f"PostgreSQL did not answer within the deadline of {self.settings.deadline:g}s"
            f" ({self.action}): {what}",
            limit="deadline",
        )

    def errors(self) -> Self:
        """The one seam where psycopg's and psycopg_pool's errors become paymentorch's:
        ``with call.errors():``. A plain context manager, not a generator's: nearly
        every call succeeds, and pays nothing for it."""
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if not isinstance(exc, Exception) or (mine := self._error(exc)) is None:
            return
        raise mine from (exc.__cause__ if isinstance(exc, DeadlinePassed) else exc)

    def _error(self, exc: Exception) -> Exception | None:
        """What ``exc`` becomes (None: it is not the driver's or the pool's; it goes up
        as it is)."""
        if isinstance(exc, DeadlinePassed):
            return self.past_deadline(
                "the statement was cancelled; if it was a write, it may have been applied"
            )
        if isinstance(exc, psycopg_pool.TooManyRequests):
            waiting = _stats(self.pool).get("requests_waiting", 0)
            return StoreUnavailable(
                f"PostgreSQL pool exhausted: {waiting} waiting ({self._named}); max_waiting"
                f" is {self.settings.max_waiting}",
                limit="max_waiting",
            )
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return self._timed_out()
        if isinstance(exc, pg_errors.QueryCanceled):
            return _cancelled(exc, self.action, "statement_timeout", "statement timeout")
        if isinstance(exc, pg_errors.LockNotAvailable):
            return _cancelled(exc, self.action, "lock_timeout", "lock timeout")
        if isinstance(exc, pg_errors.UniqueViolation):
            return StoreError(f"PostgreSQL refused to {self.action}: {exc.diag.message_primary}")
        if isinstance(exc, _UNAVAILABLE):
            return StoreUnavailable(f"PostgreSQL is unavailable ({self.action}): {exc}")
        if isinstance(exc, pg_errors.UndefinedTable):
            return StoreError(
                "the paymentorch schema is missing: run `paymentorch migrate URL` "
                "or `await paymentorch.migrate(url)` first"
            )
        if isinstance(exc, psycopg.Error):
            return StoreError(f"PostgreSQL failed to {self.action}: {exc}")
        return None

    @property
    def _named(self) -> str:
        return f"pool {getattr(self.pool, 'name', '?')!r}, {self.action}"

    def _timed_out(self) -> StoreUnavailable:
        if self.cut_short:
            return self.past_deadline("no connection was free in time")
        stats = _stats(self.pool)
        size, waiting = self.pool.max_size, stats.get("requests_waiting", 0)
        if stats.get("connections_errors", 0) <= self.connect_errors:
            return StoreUnavailable(
                f"PostgreSQL pool exhausted: {waiting} waiting ({self._named}); all {size}"
                f" connections stayed busy for the pool_timeout of {self.settings.wait:g}s",
                limit="pool_timeout",
            )
        return StoreUnavailable(
            f"PostgreSQL is unavailable ({self.action}): no connection within"
            f" {self.settings.wait:g}s (the server refuses or does not answer)",
            limit="pool_timeout",
        )


_UNAVAILABLE: Final = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolClosed)


class DeadlinePassed(Exception):
    """A statement ran past the call's deadline and was cancelled."""


def connect_errors(pool: Any) -> int:
    """How many of the pool's attempts to connect have failed so far."""
    counts = getattr(pool, "_stats", None)  # asked on every call: get_stats() builds a dict
    if type(counts) is collections.Counter:
        return counts["connections_errors"]
    return _stats(pool).get("connections_errors", 0)


def _stats(pool: Any) -> dict[str, int]:
    try:
        stats: dict[str, int] = pool.get_stats()
    except Exception:
        return {}
    return stats


def _cancelled(exc: psycopg.Error, action: str, limit: str, words: str) -> StoreUnavailable:
    message = exc.diag.message_primary or str(exc)
    if words not in message:  # cancelled by someone else (pg_cancel_backend)
        return StoreUnavailable(f"PostgreSQL cancelled the statement ({action}): {message}")
    return StoreUnavailable(
        f"PostgreSQL cancelled the statement ({action}): {limit} reached; nothing was written",
        limit=limit,
    )


class bounded:  # noqa: N801 - used as a function is, like its blocking twin's
    """Cancel what runs on ``conn`` (psycopg cancels it on the server too) after
    ``seconds`` (None: never), raising ``DeadlinePassed``."""

    __slots__ = ("_seconds", "_timeout")

    def __init__(self, conn: psycopg.AsyncConnection[Any], seconds: float | None) -> None:
        self._seconds = seconds
        self._timeout: asyncio.Timeout | None = None

    async def __aenter__(self) -> None:
        if self._seconds is None:
            return
        if self._seconds <= 0:
            raise DeadlinePassed
        self._timeout = asyncio.timeout(self._seconds)
        await self._timeout.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        timeout = self._timeout
        if timeout is None:
            return
        try:
            await timeout.__aexit__(kind, exc, tb)
        except TimeoutError as expired:
            if timeout.expired():
                raise DeadlinePassed from expired
            raise


@contextlib.contextmanager
def bounded_sync(conn: psycopg.Connection[Any], seconds: float | None) -> Iterator[None]:
    """``bounded`` for the blocking twin: a watchdog thread cancels the statement on the
    server after ``seconds``."""
    if seconds is None:
        yield
        return
    if seconds <= 0:
        raise DeadlinePassed
    alarm = _watchdog.arm(conn, seconds)
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        if alarm.fired:
            raise DeadlinePassed from exc
        raise
    finally:
        alarm.disarm()


@attrs.define(eq=False)
class _Alarm:
    conn: Any
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    done: bool = False
    fired: bool = False

    def disarm(self) -> None:
        with self.lock:  # a cancel being sent finishes before the connection goes back
            self.done = True

    def ring(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
            try:
                self.conn.cancel_safe(timeout=5)
            except Exception as exc:
                logger.warning("could not cancel a statement past its deadline: %s", exc)


class _Watchdog:
    """One daemon thread per process that rings alarms when they are due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _Alarm]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._started = False
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        # The child has no watchdog thread, and the parent's may have held the lock.
        self._due, self._condition, self._started = [], threading.Condition(), False

    def arm(self, conn: Any, seconds: float) -> _Alarm:
        alarm = _Alarm(conn)
        with self._condition:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="paymentorch-deadline", daemon=True).start()
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), alarm))
            self._condition.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due or self._due[0][0] > time.monotonic():
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._condition.wait(timeout)
                _, _, alarm = heapq.heappop(self._due)
            alarm.ring()


_watchdog = _Watchdog()
