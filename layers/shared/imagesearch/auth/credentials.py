"""Where a request carries its credential: `Authorization: Bearer <key or token>` or `X-API-Key: <key>`.

One rule for the functions (http/auth.py) and the edge authorizer (auth/edge.py), so both read the same
credential from the same header of the same request.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagesearch.errors import Unauthorized


@dataclass(frozen=True)
class Presented:
    """A credential and the header value it came in (what an HTTP API identity source holds)."""

    header_value: str
    credential: str


def presented(*, authorization: str | None, api_key: str | None) -> Presented | None:
    """Authorization first (it must read `Bearer <credential>`), else X-API-Key; None when neither is sent.

    Unauthorized for an Authorization header of any other form, even beside an X-API-Key."""
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use 'Authorization: Bearer <key or token>'")
        return Presented(authorization, token.strip())
    if api_key is not None:
        return Presented(api_key, api_key.strip())
    return None
