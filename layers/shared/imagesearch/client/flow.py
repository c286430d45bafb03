"""Requests described once, sent by either client.

Every API operation is a generator (a `Flow`) that yields what it needs done, a `Call` (an HTTP request) or
a `Sleep`, and gets back the response (or has the transport's exception thrown into it). The operation's
logic (request building, retries, pagination steps, polling, response parsing) is written once; `Client`
runs flows with httpx.Client and time.sleep, `AsyncClient` with httpx.AsyncClient and asyncio.sleep.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from imagesearch.client.errors import ApiError
from imagesearch.client.retry import RETRY_STATUSES, RetryPolicy

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call:
    """One HTTP request: a path under the client's base URL, or an absolute URL (a presigned upload)."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, Any] | None = None
    files: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of httpx's Client.request and AsyncClient.request (the same for both)."""
        arguments: dict[str, Any] = {"headers": dict(self.headers)}
        for name in ("params", "json", "data", "files", "content"):
            if getattr(self, name) is not None:
                arguments[name] = getattr(self, name)
        return arguments


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = Call | Sleep
Flow = Generator[Step, Any, T]


def retried(call: Call, policy: RetryPolicy) -> Flow[httpx.Response]:
    """`call`, sent again on 429/5xx-for-now answers and connection errors as `policy` says; the last answer
    (whatever its status) or the last connection error after that."""
    attempt = 0
    while True:
        try:
            response: httpx.Response = yield call
        except httpx.TransportError:
            if attempt >= policy.retries:
                raise
            delay = policy.delay(attempt)
        else:
            if response.status_code not in RETRY_STATUSES or attempt >= policy.retries:
                return response
            delay = policy.delay(attempt, response.headers.get("retry-after"))
        yield Sleep(delay)
        attempt += 1


def checked(response: httpx.Response, ok: tuple[int, ...] = (200,)) -> httpx.Response:
    """The response when its status is one of `ok`; ApiError with its problem details otherwise."""
    if response.status_code not in ok:
        raise ApiError.from_response(response)
    return response


def parsed(model: type[M], response: httpx.Response) -> M:
    return model.model_validate_json(response.content)
