"""The connection under each SQLite store, and where the store's work runs on it.

Every operation of a store is one function of the connection (for a write, a whole
``BEGIN IMMEDIATE ... COMMIT``), handed to ``_run``. The two runners differ only there:

- ``SQLiteConnection`` (async): with ``durability="normal"``, work on a single payment
  runs right on the event loop with a busy timeout of zero, since a WAL commit without
  a sync takes tens of microseconds, less than a hop to another thread. Work whose size
  the caller chooses (batches, listings, counts, the outbox), and any call that finds
  the file locked, runs on the connection's private thread, which waits out the busy
  timeout: one hop, where a driver that hops once per statement would cost five.
- ``SyncSQLiteConnection`` (blocking twin): in the calling thread, one thread at a
  time, waiting up to the busy timeout for another process's write.

With a ``deadline``, a call waits for the file's lock (and for its turn on the
connection) no longer than what is left of it: the busy timeout within the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Self, TypeVar

from paymentorch import _deadline, _fork
from paymentorch.domain import FieldError, StoreError, StoreUnavailable, ValidationError

from .statements import EXPOSURE_MOVED, exposure_moved

T = TypeVar("T")
Durability = Literal["normal", "full"]

# sqlite3 binds int, float and str directly, but looks every other value up among its
# adapters, and for a None with none registered raises and formats an AttributeError on
# the way to binding NULL: a third of a microsecond per None, and a change binds a dozen.
# Adapting None to itself binds the same NULL without it (for every sqlite3 user of this
# process, which cannot tell the difference); a host's own adapter of None is kept.
if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(type(None), lambda value: value)


def connect(
    path: str, *, durability: Durability, busy_timeout: float, create_schema: bool
) -> sqlite3.Connection:
    """A connection in WAL mode to the database at ``path``, its schema checked.

    Raises ``StoreError`` when the schema is missing, ``StoreUnavailable`` when the file
    cannot be opened.
    """
    if durability not in ("normal", "full"):
        raise ValidationError([FieldError("durability", "must be 'normal' or 'full'", "choice")])
    in_memory = path == ":memory:"
    if create_schema and not in_memory:
        from paymentorch._migrate import migrate_sync  # noqa: PLC0415 - Alembic only when asked

        migrate_sync(f"sqlite:///{path}")
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open SQLite database {path!r}: {exc}") from exc
    try:
        conn.create_function(EXPOSURE_MOVED, 2, exposure_moved, deterministic=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={durability.upper()}")
        if in_memory and create_schema:
            # A private database lives and dies with its one connection: the schema
            # must be made on this very connection.
            from paymentorch._migrate import migrate_connection  # noqa: PLC0415

            migrate_connection(conn)
        conn.execute("SELECT 1 FROM paymentorch_payments LIMIT 0")
    except sqlite3.Error as exc:
        conn.close()
        if "no such table" in str(exc):
            raise StoreError(
                f"the paymentorch schema is missing in {path!r}: open it with "
                "create_schema=True, or run `paymentorch migrate URL` first"
            ) from exc
        raise StoreUnavailable(f"cannot open SQLite database {path!r}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def check_deadline(deadline: object) -> float | None:
    """``deadline`` in seconds (a number or a ``timedelta``), or None.

    Raises:
        ValidationError: it is neither, or not more than zero.
    """
    if deadline is None:
        return None
    found = _deadline.seconds(deadline)
    if found is None:
        message = "must be seconds (a number or a timedelta) above 0"
        raise ValidationError([FieldError("deadline", message, "range")])
    return found


class _Wait:
    """How long one call may wait for the file's lock: the busy timeout, within what is
    left of the deadline (counted from the start of the service call)."""

    def __init__(
        self, busy_timeout: float, deadline: float | None, started: float | None = None
    ) -> None:
        self.deadline = deadline
        self.seconds = busy_timeout
        self.cut = False
        if deadline is not None:
            left = deadline - (time.monotonic() - (started or _deadline.started()))
            self.cut = left < busy_timeout
            self.seconds = max(0.0, min(busy_timeout, left))

    @property
    def ms(self) -> int:
        return round(self.seconds * 1000)

    def past(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"SQLite did not answer within the deadline of {self.deadline:g}s: the database"
            " file stayed locked by another writer",
            limit="deadline",
        )


def _busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    )


@contextlib.contextmanager
def _errors(wait: _Wait | None = None) -> Iterator[None]:
    """The one seam where sqlite3's errors become paymentorch's."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"SQLite refused the write: {exc}") from exc
    except sqlite3.Error as exc:
        if wait is not None and wait.cut and _busy(exc):
            raise wait.past() from exc
        if _busy(exc):
            raise StoreUnavailable(
                f"SQLite failed: {exc} (another writer held the file past busy_timeout)",
                limit="busy_timeout",
            ) from exc
        raise StoreUnavailable(f"SQLite failed: {exc}") from exc


class SQLiteConnection:
    """One connection, used from the event loop when it need not wait, else its thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        *,
        busy_timeout: float = 30.0,
        inline: bool = True,
        deadline: float | None = None,
    ) -> None:
        self._conn = conn
        self._executor = executor
        self._busy_timeout = busy_timeout
        self._busy_ms = round(busy_timeout * 1000)
        self._inline = inline
        self._deadline = deadline
        # One user of the connection at a time, from any thread or event loop: held only
        # around a synchronous call, never across an await.
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        create_schema: bool = True,
        deadline: object = None,
    ) -> Self:
        """Open (and by default create or upgrade) the database at ``path``."""
        seconds = check_deadline(deadline)
        executor = ThreadPoolExecutor(1, thread_name_prefix="paymentorch-sqlite")
        inline = durability == "normal"

        def opened() -> sqlite3.Connection:
            conn = connect(
                path, durability=durability, busy_timeout=busy_timeout, create_schema=create_schema
            )
            if inline:
                conn.execute("PRAGMA busy_timeout=0")  # never wait on the event loop
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, opened)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(conn, executor, busy_timeout=busy_timeout, inline=inline, deadline=seconds)

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool = False) -> T:
        """Run ``fn`` with the connection: on the loop if ``inline`` and it need not wait,
        else on the connection's thread. Only bounded single-payment work is ``inline``.
        """
        if self._closed:
            raise StoreUnavailable("the SQLite store is closed")
        with _errors():
            if inline and self._inline and self._lock.acquire(blocking=False):
                try:
                    return fn(self._conn)
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                finally:
                    self._lock.release()
        # The file or the connection is busy: wait for it on the private thread.
        loop = asyncio.get_running_loop()
        started = _deadline.started()
        return await loop.run_in_executor(self._executor, self._patiently, fn, started)

    def _patiently(self, fn: Callable[[sqlite3.Connection], T], started: float) -> T:
        wait = _Wait(self._busy_timeout, self._deadline, started)  # the queue's wait counts
        with _errors(wait), self._lock:
            if not self._inline and self._deadline is None:
                return fn(self._conn)
            self._conn.execute(f"PRAGMA busy_timeout={wait.ms}")
            try:
                return fn(self._conn)
            finally:
                self._conn.execute(f"PRAGMA busy_timeout={0 if self._inline else self._busy_ms}")

    def _close(self) -> None:
        with self._lock:
            self._conn.close()

    async def aclose(self) -> None:
        """Close the connection and stop its thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close)
        except RuntimeError:  # the executor is shut already: the interpreter is exiting
            self._close()
        self._executor.shutdown(wait=True)


class SyncSQLiteConnection:
    """One connection, used in the calling thread, one thread at a time.

    After ``fork()`` the child connects anew on its first call and leaves the inherited
    connection alone.
    """

    def __init__(
        self,
        path: str,
        conn: sqlite3.Connection,
        *,
        durability: Durability,
        busy_timeout: float,
        deadline: float | None = None,
    ) -> None:
        self._path = path
        self._conn = conn
        self._durability: Durability = durability
        self._busy_timeout = busy_timeout
        self._deadline = deadline
        self._lock = threading.Lock()
        self._generation = _fork.generation
        self._closed = False

    @classmethod
    def open(
        cls,
        path: str,
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        create_schema: bool = True,
        deadline: object = None,
    ) -> Self:
        """Open (and by default create or upgrade) the database at ``path``."""
        seconds = check_deadline(deadline)
        conn = connect(
            path, durability=durability, busy_timeout=busy_timeout, create_schema=create_schema
        )
        return cls(path, conn, durability=durability, busy_timeout=busy_timeout, deadline=seconds)

    def _run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool = False) -> T:
        """Run ``fn`` with the connection in this thread (``inline`` is the async store's)."""
        if self._closed:
            raise StoreUnavailable("the SQLite store is closed")
        if self._generation != _fork.generation:
            self._reconnect_in_child()
        if self._deadline is None:
            with _errors(), self._lock:
                return fn(self._conn)
        started = _deadline.started()
        wait = _Wait(self._busy_timeout, self._deadline, started)
        if not self._lock.acquire(timeout=wait.seconds):  # another thread's turn took it all
            raise wait.past()
        try:
            wait = _Wait(self._busy_timeout, self._deadline, started)
            with _errors(wait):
                self._conn.execute(f"PRAGMA busy_timeout={wait.ms}")
                try:
                    return fn(self._conn)
                finally:
                    self._conn.execute(f"PRAGMA busy_timeout={round(self._busy_timeout * 1000)}")
        finally:
            self._lock.release()

    def _reconnect_in_child(self) -> None:
        if self._path == ":memory:":
            raise StoreUnavailable("a private sqlite:///:memory: database stays with its parent")
        # The lock too may have been held by a thread that the child does not have.
        _fork.abandon(self._conn, self._lock)
        self._lock = threading.Lock()
        self._conn = connect(
            self._path,
            durability=self._durability,
            busy_timeout=self._busy_timeout,
            create_schema=False,
        )
        self._generation = _fork.generation

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._conn.close()
