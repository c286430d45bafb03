"""A fault-injecting HTTP proxy in front of an S3 endpoint (moto's server): it forwards requests untouched
(Host header and path too, so signatures and path-style addressing still work) and, when switched, answers
instead with S3's own error (status, XML body), as S3 does when it throttles or refuses."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Code -> (status, message), as S3 answers them.
S3_ERRORS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "AccessDenied": (403, "Access Denied"),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


class FaultyS3Proxy:
    """Forwards to `upstream`; `fail(code)` answers every request (or those of `methods`) with that error
    until `clear()`. `answered` counts (method, status) of every answer it gave."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._fault: tuple[str, frozenset[str] | None] | None = None
        self._lock = threading.Lock()
        self.answered: Counter[tuple[str, int]] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, code: str, *, methods: Collection[str] | None = None) -> None:
        """Answer `code` (a key of S3_ERRORS) to every request, or only to those of `methods`."""
        with self._lock:
            self._fault = (code, frozenset(methods) if methods is not None else None)

    def clear(self) -> None:
        with self._lock:
            self._fault = None

    def count(self, method: str, status: int) -> int:
        with self._lock:
            return self.answered[(method, status)]

    def _fault_for(self, method: str) -> str | None:
        with self._lock:
            if self._fault is None:
                return None
            code, methods = self._fault
            return code if methods is None or method in methods else None

    def _record(self, method: str, status: int) -> None:
        with self._lock:
            self.answered[(method, status)] += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as S3: boto3 reuses its connections

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                code = proxy._fault_for(self.command)
                if code is not None:
                    self._answer_error(code)
                else:
                    self._forward(body)

            def _answer_error(self, code: str) -> None:
                status, message = S3_ERRORS[code]
                xml = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{code}</Code><Message>{message}</Message>"
                    "<RequestId>FAULTYS3PROXY</RequestId><HostId>faulty-s3</HostId></Error>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("x-amz-request-id", "FAULTYS3PROXY")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                if self.command != "HEAD":  # as S3: a HEAD error has a status and no body
                    self.wfile.write(xml)
                proxy._record(self.command, status)

            def _forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    content = response.read()
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    length = response.getheader("Content-Length") if self.command == "HEAD" else None
                    self.send_header("Content-Length", length or str(len(content)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(content)
                    proxy._record(self.command, response.status)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def faulty_s3(upstream: str) -> Iterator[FaultyS3Proxy]:
    """A running proxy in front of `upstream` for the duration of the block."""
    proxy = FaultyS3Proxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
