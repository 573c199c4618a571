"""A lean Redis connection for the read hot path: one socket per thread, hiredis framing.

redis-py spends about 100 µs of CPU on a one-key MGET (pool, retries, health checks); the
same request over a plain socket with hiredis' packer and reader costs about 12 µs. The
online store reads through this connection when the URL is a plain `redis://host:port/db`
(password and username allowed) and through redis-py otherwise (TLS, unix sockets, options).
"""

from __future__ import annotations

import socket
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

try:
    import hiredis
except ModuleNotFoundError:  # pragma: no cover - redis[hiredis] brings it
    hiredis = None

_RECV_BYTES = 1 << 16


class RespAddress(NamedTuple):
    """Where and how to connect: host, port, database, credentials."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None


def lean_address(url: str) -> RespAddress | None:
    """The address of a plain `redis://` URL; None when it needs redis-py's full client."""
    parts = urlsplit(url)
    if hiredis is None or parts.scheme != "redis" or parts.query or not parts.hostname:
        return None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        return None
    try:
        port = parts.port or 6379
    except ValueError:
        return None
    return RespAddress(parts.hostname, port, int(path or 0),
                       unquote(parts.username) if parts.username else None,
                       unquote(parts.password) if parts.password else None)


class RespError(Exception):
    """Redis answered with an error reply."""


class RespConnection:
    """One socket to Redis; `call` sends a command and returns its reply."""

    def __init__(self, address: RespAddress, *, connect_timeout: float, timeout: float) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()

    def _connect(self) -> socket.socket:
        address = self.address
        sock = socket.create_connection((address.host, address.port),
                                        timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        self._sock, self._reader = sock, hiredis.Reader()
        try:
            if address.password is not None:
                self._roundtrip(sock, ("AUTH", address.password) if address.username is None
                                else ("AUTH", address.username, address.password))
            if address.db:
                self._roundtrip(sock, ("SELECT", address.db))
        except BaseException:
            self.close()
            raise
        return sock

    def _roundtrip(self, sock: socket.socket, args: tuple[Any, ...]) -> Any:
        sock.sendall(hiredis.pack_command(args))
        reader = self._reader
        reply = reader.gets()
        while reply is False:
            chunk = sock.recv(_RECV_BYTES)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            reader.feed(chunk)
            reply = reader.gets()
        if isinstance(reply, hiredis.ReplyError):
            raise RespError(str(reply))
        return reply

    def call(self, *args: Any) -> Any:
        """Send one command, return its reply; reconnect and retry once on a stale socket.

        Raises OSError (unreachable, timeout) or RespError; only use it for idempotent
        commands (reads): a retry may repeat a command Redis already ran.
        """
        sock = self._sock
        if sock is not None:
            try:
                return self._roundtrip(sock, args)
            except TimeoutError:
                self.close()
                raise
            except OSError:  # closed by the server (idle timeout, restart): one fresh try
                self.close()
        try:
            return self._roundtrip(self._connect(), args)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        """Close the socket (the next call reconnects)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
