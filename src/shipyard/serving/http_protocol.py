"""uvicorn's httptools protocol, writing each response's head and first body chunk at once.

uvicorn writes the status line and headers, then the body, with two `transport.write`
calls: two `send()` system calls and two TCP segments per small JSON response, a third of
the server's CPU time on a feature read. This subclass holds the head until the first body
chunk (or the end of the response) and writes both together. Nothing else changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _Collector:
    """A stand-in transport that keeps what is written (and a close) for later."""

    __slots__ = ("chunks", "closed", "real")

    def __init__(self, real: asyncio.Transport) -> None:
        self.real = real
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed or self.real.is_closing()

    def flush(self) -> None:
        if self.chunks:
            self.real.write(b"".join(self.chunks))
        if self.closed:
            self.real.close()


class _CoalescingCycle(RequestResponseCycle):
    """A request-response cycle whose response head waits for the first body message."""

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            real = self.transport
            self.transport = _Collector(real)  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self._held, self.transport = self.transport, real
            return
        held: _Collector | None = self.__dict__.pop("_held", None)
        if held is None:
            await super().send(message)
            return
        real = self.transport
        self.transport = held  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = real
            held.flush()


class HttpProtocol(HttpToolsProtocol):
    """`uvicorn.run(..., http=HttpProtocol)`: httptools with one write per small response."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _CoalescingCycle
