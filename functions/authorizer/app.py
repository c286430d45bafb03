"""Authorizer function: the HTTP API's Lambda authorizer in api_key mode (payload 2.0, simple responses).

API Gateway calls it before a request reaches the upload or search function and keeps its verdict per
Authorization header for the authorizer's result TTL: an invalid or revoked key is refused at the edge
(403) and never reaches a function or the database; a valid one reaches the function with its tenant in
requestContext.authorizer.lambda. When the database is down the key cannot be checked: the request goes
on and the function answers 503 with Retry-After (docs/edge-auth.md).
"""

from __future__ import annotations

from typing import Any

from imagesearch.auth.edge import authorize
from imagesearch.logs import logger
from imagesearch.runtime import get_runtime


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return authorize(event, get_runtime().api_keys)
