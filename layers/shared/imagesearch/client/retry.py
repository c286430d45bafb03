"""Retries with backoff for requests to a running API (a stack still starting, a throttled gateway)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

RETRIES = 4
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def with_retries(send: Callable[[], httpx.Response], *, retries: int = RETRIES) -> httpx.Response:
    """`send()`, again with exponential backoff on 429/5xx and connection errors (a stack still starting)."""
    for attempt in range(retries):
        last = attempt == retries - 1
        try:
            response = send()
        except httpx.TransportError:
            if last:
                raise
        else:
            if response.status_code not in RETRY_STATUSES or last:
                return response
        time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")
