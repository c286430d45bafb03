"""uvicorn with imagesearch's HttpProtocol (http/protocol.py), on a real socket: a response of known length
leaves in one write, head and body together; a stream's head leaves at once; a failure between the head
and the body closes the connection without a half answer; keep-alive, HEAD and 100-continue work."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.live import free_port, serving

from imagesearch.http.protocol import HttpProtocol

BODY = b'{"results":[]}'
release = threading.Event()  # lets /stream's body go


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/echo":  # reads the whole request body first (100-continue)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":  # no length: the head goes now, the body when the test says
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b"last"})
    elif path == "/fail":  # a head, then the app fails before any body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("the app failed after the head")
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
    else:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})


class _Recording:
    """The connection's transport, keeping every write."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []


class RecordingProtocol(HttpProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recording(transport, WRITES))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    with serving(app, port, http=RecordingProtocol):
        yield port


@pytest.fixture(autouse=True)
def fresh() -> None:
    WRITES.clear()
    release.clear()


def connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def read_response(conn: socket.socket, *, head_only: bool = False) -> tuple[bytes, bytes]:
    """One response's head and body (by its content-length), or the head and b"" with `head_only`.
    What arrives past it (a pipelined response) is left for the next call."""
    data = _unread.pop(conn, b"")
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = 0 if head_only or not lengths else int(lengths[0].split(b":")[1])
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "the connection closed in the middle of the body"
        body += chunk
    if len(body) > length:
        _unread[conn] = body[length:]
    return head, body[:length]


_unread: dict[socket.socket, bytes] = {}


def until(condition: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_response_of_known_length_is_one_write_with_head_and_body(port: int) -> None:
    with connect(port) as conn:
        conn.sendall(b"GET /search HTTP/1.1\r\nhost: x\r\n\r\n")
        head, body = read_response(conn)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 14" in head.lower() and b"content-type: application/json" in head
    assert body == BODY
    until(lambda: len(WRITES) >= 1)
    assert WRITES == [head + b"\r\n\r\n" + body]


def test_keep_alive_requests_each_get_one_write(port: int) -> None:
    with connect(port) as conn:
        for _ in range(3):
            conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            assert read_response(conn)[1] == BODY
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n")  # pipelined
        assert read_response(conn)[1] == BODY
        assert read_response(conn)[1] == BODY
    until(lambda: len(WRITES) >= 5)
    assert len(WRITES) == 5 and all(w.startswith(b"HTTP/1.1 200 OK") and w.endswith(BODY) for w in WRITES)


def test_a_stream_has_its_head_written_before_its_body_exists(port: int) -> None:
    with connect(port) as conn:
        conn.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        head, _ = read_response(conn, head_only=True)  # while the app still waits for `release`
        assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in head
        release.set()
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            assert chunk
            rest += chunk
    assert rest == b"5\r\nfirst\r\n4\r\nlast\r\n0\r\n\r\n"


def test_a_failure_after_the_head_closes_the_connection_with_no_half_answer(port: int) -> None:
    with connect(port) as conn:
        conn.sendall(b"GET /fail HTTP/1.1\r\nhost: x\r\n\r\n")
        assert conn.recv(65536) == b""  # closed, with no head promising 10 bytes that never come
    with connect(port) as conn:  # the server goes on
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert read_response(conn)[1] == BODY


def test_head_and_no_content_answers_are_whole(port: int) -> None:
    with connect(port) as conn:
        conn.sendall(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
        head, _ = read_response(conn, head_only=True)
        assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 14" in head.lower()
        conn.sendall(b"GET /empty HTTP/1.1\r\nhost: x\r\n\r\n")
        head, body = read_response(conn)
        assert head.startswith(b"HTTP/1.1 204") and body == b""
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        head, body = read_response(conn)
        assert b"connection: close" in head.lower() and body == BODY
        assert conn.recv(65536) == b""  # and then closed, as asked
    assert len(WRITES) == 3


def test_expect_100_continue_still_gets_its_interim_answer_first(port: int) -> None:
    with connect(port) as conn:
        conn.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
        interim, _ = read_response(conn, head_only=True)
        assert interim == b"HTTP/1.1 100 Continue"
        conn.sendall(b"hello")
        head, body = read_response(conn)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"hello"
    until(lambda: len(WRITES) >= 2)
    assert WRITES[0] == b"HTTP/1.1 100 Continue\r\n\r\n" and WRITES[1].endswith(b"\r\n\r\nhello")
