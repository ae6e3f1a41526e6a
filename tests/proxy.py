"""A TCP proxy the tests control: put it between a client and a shared server to cut it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; ``cut`` drops every connection and
    turns new ones away for a while, as a server that stopped would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        """Connections open through the proxy now."""
        with self._lock:
            return len(self._open) // 2

    def cut(self, seconds: float) -> None:
        """Close every connection now and refuse new ones for ``seconds``."""
        with self._lock:
            self._down_until = time.monotonic() + seconds
            doomed, self._open = self._open, set()
        for sock in doomed:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        self.cut(0)
        _close(self._listener)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool = False) -> None:
        seen = bytearray()
        try:
            while data := source.recv(65536):
                if answers:  # counted before the client can see it, and ask again
                    self._answered(data, seen)
                else:
                    self._asked(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {source, sink}
            _close(source)
            _close(sink)

    def _answered(self, data: bytes, seen: bytearray) -> None:
        """What the server sent on one connection (``seen``: what came before it)."""

    def _asked(self, data: bytes) -> None:
        """What a client sent, before the server gets it."""


class RoundTrips(TcpProxy):
    """A ``TcpProxy`` to PostgreSQL that counts round trips: the ReadyForQuery messages
    the server sends, one after each query or sync. The client must not ask for
    encryption (``sslmode=disable&gssencmode=disable``): it reads the protocol."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.count = 0
        super().__init__(target)

    @classmethod
    def to(cls, url: str) -> RoundTrips:
        """A proxy to the server of ``url`` (``postgresql://user@host:port/db``)."""
        server = urlsplit(url)
        return cls((server.hostname or "127.0.0.1", server.port or 5432))

    def url(self, url: str) -> str:
        """``url`` (``postgresql://user@host:port/db``) through the proxy, unencrypted."""
        user, _, rest = url.partition("://")[2].rpartition("@")
        database = rest.partition("/")[2]
        joined = "&" if "?" in database else "?"
        return (
            f"postgresql://{user}@127.0.0.1:{self.port}/{database}"
            f"{joined}sslmode=disable&gssencmode=disable"
        )

    def _answered(self, data: bytes, seen: bytearray) -> None:
        seen += data
        while len(seen) >= 5:  # a type byte and a length that counts itself
            size = 1 + int.from_bytes(seen[1:5], "big")
            if len(seen) < size:
                return
            if seen[0:1] == b"Z":
                with self._lock:
                    self.count += 1
            del seen[:size]


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
