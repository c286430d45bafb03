"""uvicorn's HTTP/1.1 protocol (httptools), writing a response of known length in one piece.

uvicorn writes a response's status line and headers to the socket when the app sends
`http.response.start`, and its body when the app sends `http.response.body`: two `send` system calls
and two TCP segments for a search's answer, each of which wakes the client. On loopback the kernel runs
the receiving side's TCP work inside the sender's `send`, so the second write costs the server as much
as the first (docs/search.md, "One write a response"). `HttpProtocol` keeps the head of a response
that declares its `content-length` until the first part of its body, and writes the two together.
A response without a length (a stream, chunked) has its head written at once, as uvicorn does, so a
client of a slow stream sees the headers before the first part.

Everything else is uvicorn's own code: the head is built by uvicorn's `send` (its checks, default
headers, keep-alive and `connection: close` handling), only the write is put off. If the app fails
between the head and the body, the head is never written and uvicorn closes the connection, as it
would after a half-sent response. Serve with `uvicorn.Config(app, http=HttpProtocol)`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _Collected:
    """Stands in for the transport while uvicorn writes a response's head: keeps the bytes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)


class _Prefixed:
    """Stands in for the transport while uvicorn writes a body: the held head goes out with it."""

    def __init__(self, transport: asyncio.Transport, head: bytes) -> None:
        self.transport = transport
        self.head: bytes | None = head

    def write(self, data: bytes) -> None:
        if self.head is not None:
            data, self.head = self.head + data, None
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:  # close, is_closing, ...
        return getattr(self.transport, name)


class _Cycle(RequestResponseCycle):
    """uvicorn's request-response cycle, holding the head of a response of known length (module docstring)."""

    _head: bytes | None = None

    async def send(self, message: Any) -> None:  # an ASGI send event (uvicorn's type is private)
        transport: Any = self.transport
        if message["type"] == "http.response.start" and not self.response_started:
            if not any(name.lower() == b"content-length" for name, _ in message.get("headers", ())):
                await super().send(message)
                return
            collected = _Collected()
            self.transport = collected  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._head = b"".join(collected.parts)
            return
        head = self._head
        if head is None:
            await super().send(message)
            return
        self._head = None
        prefixed = _Prefixed(transport, head)
        self.transport = prefixed  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport
        # uvicorn writes no body for HEAD: the head goes alone. A client gone, or a body uvicorn refused
        # (it raised above), and the head is dropped: the connection closes without a half answer.
        if prefixed.head is not None and not self.disconnected:
            transport.write(head)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, its cycles writing a response of known length in one piece."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if type(cycle) is RequestResponseCycle:
            # uvicorn made the cycle and scheduled its task, which has not run yet: from here on, its
            # methods are _Cycle's (same class layout, one more method).
            cycle.__class__ = _Cycle
