"""One webhook POST, to an address checked just before connecting (no DNS rebinding), no redirects.

The standard library's http.client, not httpx: the connection goes to the very address that passed the
check (the Host header and TLS's server name stay the URL's host, and the certificate is verified
against it), redirects are never followed, and the Lambda layer needs no new dependency.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from typing import Protocol

from imagesearch.webhooks.urls import InvalidWebhookUrl, IPAddress, Target, allowed_addresses, parse_url

USER_AGENT = "imagesearch-webhooks/1"
MAX_ERROR_LENGTH = 300


@dataclass(frozen=True)
class SendResult:
    """What one attempt got: an HTTP status, or an error before any (connection, TLS, timeout, refusal)."""

    status_code: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult: ...


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, address: IPAddress, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, address: IPAddress, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class HttpSender:
    """POSTs with a timeout per connect and per read, to public addresses only unless `allow_private`."""

    def __init__(self, *, timeout_seconds: float = 5.0, allow_private: bool = False) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        try:
            target = parse_url(url)
            address = allowed_addresses(target, allow_private=self.allow_private)[0]
        except InvalidWebhookUrl as e:
            return SendResult(None, f"refused: {e.detail}"[:MAX_ERROR_LENGTH])
        kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = kind(target, address, self.timeout_seconds)
        try:
            connection.request("POST", target.path, body=body, headers={**headers, "User-Agent": USER_AGENT})
            response = connection.getresponse()
            response.read(4096)  # a little of the body, so the connection closes cleanly; the rest is ignored
            if 300 <= response.status < 400:
                return SendResult(response.status, "redirects are not followed")
            return SendResult(response.status, None if response.status < 300 else f"HTTP {response.status}")
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, TLS, garbage
            return SendResult(None, f"{type(e).__name__}: {e}"[:MAX_ERROR_LENGTH])
        finally:
            connection.close()
