"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body, Stripe-style.

The header is `Imagesearch-Signature: t=<unix seconds>,v1=<hex digest>`, the digest being
HMAC-SHA256(secret, f"{t}.".encode() + body). A receiver recomputes it over the raw body it got, compares in
constant time, and refuses a timestamp more than `tolerance` seconds from its clock (the replay window,
300 s by default). During a secret rotation a header may carry several `v1=` values: any match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Imagesearch-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The signature header is missing, malformed, does not match the body, or is outside the window."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The `Imagesearch-Signature` header value for `body` sent at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """The signed timestamp if `header` signs `body` with `secret` within `tolerance` seconds of `now`;
    raises InvalidSignature otherwise."""
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("the signature header has no timestamp or no v1 signature")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(f"the timestamp is more than {tolerance} s from now (a replay?)")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates if c.isascii()):
        raise InvalidSignature("the signature does not match the body")
    return timestamp
