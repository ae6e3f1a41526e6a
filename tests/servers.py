"""Private PostgreSQL and Redis servers for the fault tests, on free ports: the tests stop,
restart, pause and reconfigure these, never the machine's shared servers.

Missing server binaries skip the tests, or fail them when
``PAYMENTORCH_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing(what: str) -> None:
    """Skip, or fail when the services are required."""
    if os.environ.get("PAYMENTORCH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PAYMENTORCH_REQUIRE_SERVICES=1 but {what}")
    pytest.skip(what)


def _wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on port {port}"
        time.sleep(0.02)  # polling a starting server


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return None if pg_ctl is None else Path(pg_ctl).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary directory, run as ``postgres`` when
    the tests run as root (initdb refuses root)."""

    def __init__(self) -> None:
        bindir = _postgres_bin()
        if bindir is None or not (bindir / "initdb").exists():
            missing("PostgreSQL's initdb and pg_ctl are not installed")
        assert bindir is not None
        self._bin = bindir
        self._as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="paymentorch-pg-"))
        self.port = free_port()
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, *settings: str) -> None:
        """Start the server (``settings``: more ``-c name=value`` for it); return once it
        accepts connections."""
        options = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1",
                   "-c fsync=off", "-c full_page_writes=off"]  # fmt: skip
        options += [f"-c {setting}" for setting in settings]
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"),
                  "-o", " ".join(options), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session (as a restart does)."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run ``sql`` in autocommit; the rows it returned."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(sql)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def database(self) -> str:
        """A new database with the paymentorch schema; its URL."""
        from paymentorch._migrate import migrate_sync

        name = f"faults_{os.urandom(4).hex()}"
        self.execute(f'CREATE DATABASE "{name}"')
        url = self.url(name)
        migrate_sync(url)
        return url

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL, removed afterwards."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


class PrivateRedis:
    """A redis-server of its own, optionally persisting every write (appendonly)."""

    def __init__(self, *, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server is not installed")
        self.root = Path(tempfile.mkdtemp(prefix="paymentorch-redis-"))
        self.port = free_port()
        self._args = [str(binary), "--port", str(self.port), "--bind", "127.0.0.1",
                      "--dir", str(self.root), "--save", "", "--appendfsync", "always",
                      "--appendonly", "yes" if appendonly else "no"]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (on the same data); return once it accepts connections."""
        self._process = subprocess.Popen(self._args, stdout=subprocess.DEVNULL)
        _wait_for_port(self.port)

    def stop(self, *, kill: bool = False) -> None:
        """Stop it: SIGTERM (it writes what it keeps first) or SIGKILL."""
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            process.wait(timeout=30)

    def pause(self) -> None:
        """Hang it: it holds every connection and answers nothing (SIGSTOP)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
        self.stop(kill=True)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_redis(*, appendonly: bool = False) -> Iterator[PrivateRedis]:
    """A started private Redis, removed afterwards."""
    server = PrivateRedis(appendonly=appendonly)
    try:
        server.start()
        yield server
    finally:
        server.close()
