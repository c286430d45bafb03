"""HMAC-signed, expiring URLs for the filesystem adapter (served by the local server under /files/)."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from imagesearch.errors import Unauthorized

FILES_PATH = "/files/"


@dataclass(frozen=True)
class UrlSigner:
    secret: bytes
    base_url: str

    def _signature(self, method: str, key: str, expires: str, content_type: str, size: str) -> str:
        message = "\n".join((method, key, expires, content_type, size)).encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def sign(
        self, method: str, key: str, *, expires_at: int, content_type: str = "", size: int | None = None
    ) -> str:
        """A URL for `method` on `key`, valid until `expires_at` (unix time)."""
        size_text = "" if size is None else str(size)
        params = {
            "expires": str(expires_at),
            "sig": self._signature(method, key, str(expires_at), content_type, size_text),
        }
        if content_type:
            params["ct"] = content_type
        if size is not None:
            params["size"] = size_text
        return f"{self.base_url}{FILES_PATH}{quote(key)}?{urlencode(params)}"

    def verify(
        self,
        method: str,
        key: str,
        *,
        expires: str,
        sig: str,
        content_type: str = "",
        size: str = "",
        now: float | None = None,
    ) -> None:
        """Raise Unauthorized unless the signature matches and has not expired."""
        # Only what `sign` writes: ASCII digits (int() would also take ' 12', '+12', '1_2' and '١٢').
        if not (expires.isascii() and expires.isdigit()):
            raise Unauthorized("malformed URL signature")
        try:
            # Bytes, not str: compare_digest refuses non-ASCII text, and a lone surrogate has no UTF-8.
            expected = self._signature(method, key, expires, content_type, size).encode("ascii")
            given = sig.encode("utf-8")
        except UnicodeEncodeError:
            raise Unauthorized("malformed URL signature") from None
        if not hmac.compare_digest(expected, given):
            raise Unauthorized("invalid URL signature")
        # The signature covers the text of `expires`, so it is what `sign` wrote: a short decimal number.
        if (time.time() if now is None else now) > int(expires):
            raise Unauthorized("the URL has expired")
