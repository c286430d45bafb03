"""Payload-2.0 events as API Gateway's HTTP API sends them to the Lambda authorizer and, with its verdict,
to the functions; built from the sample events in events/ (support.events)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from support.events import sample

from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function

ROUTE_ARN = "arn:aws:execute-api:us-east-1:123456789012:api-id/$default/GET/images"


def authorizer_event(
    headers: Mapping[str, str] | None = None, *, identity: Iterable[str] = ("authorization",)
) -> dict[str, Any]:
    """What the API-key authorizer receives for GET /images with these headers. `identity` names the
    identity source's headers; API Gateway puts their values in `identitySource` (its cache key)."""
    request = sample("http-get-images.json")
    sent = {name.lower(): value for name, value in (headers or {}).items()}
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": ROUTE_ARN,
        "identitySource": [sent[name] for name in identity if name in sent] or None,
        "routeKey": request["routeKey"],
        "rawPath": request["rawPath"],
        "rawQueryString": request["rawQueryString"],
        "headers": {**request["headers"], **sent},
        "queryStringParameters": request["queryStringParameters"],
        "requestContext": request["requestContext"],
    }


def http_event(
    name: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    query: Mapping[str, str] | None = None,
    lambda_context: Mapping[str, Any] | None = None,
    jwt_claims: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A sample HTTP API event (events/`name`) with extra headers, a JSON body, another query, and the
    verdict of an authorizer in requestContext.authorizer (`lambda` for the Lambda authorizer, `jwt` for
    API Gateway's JWT authorizer)."""
    event = copy.deepcopy(sample(name))
    event["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
    if body is not None:
        event["body"] = json.dumps(body)
        event["isBase64Encoded"] = False
        event["headers"]["content-type"] = "application/json"
        event["headers"]["content-length"] = str(len(event["body"].encode()))
    if query is not None:
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = dict(query) or None
    authorizer: dict[str, Any] = {}
    if lambda_context is not None:
        authorizer["lambda"] = dict(lambda_context)
    if jwt_claims is not None:
        authorizer["jwt"] = {"claims": dict(jwt_claims), "scopes": None}
    if authorizer:
        event["requestContext"]["authorizer"] = authorizer
    return event


def authorize(event: Mapping[str, Any]) -> dict[str, Any]:
    """The authorizer function's answer, through its handler."""
    result: dict[str, Any] = load_function("authorizer").handler(dict(event), LocalLambdaContext())
    return result


def respond(function: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """An HTTP function's answer to `event`, through its handler (Mangum), as API Gateway gets it."""
    response: dict[str, Any] = load_function(function).handler(dict(event), LocalLambdaContext())
    return response


def call(function: str, event: Mapping[str, Any]) -> tuple[int, Any]:
    """Status and parsed body of an HTTP function's answer to `event`."""
    response = respond(function, event)
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):  # Mangum encodes what it does not know as text (problem+json)
        text = base64.b64decode(text).decode("utf-8")
    return response["statusCode"], json.loads(text) if text else None
