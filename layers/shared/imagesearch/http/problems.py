"""The one place that maps the project's exceptions to RFC 9457 problem+json responses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from imagesearch import errors
from imagesearch.logs import logger

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response carries them."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    reason: str | None = Field(
        default=None, description="for rejected images: empty, unsupported_format, ..."
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="for invalid requests: field by field"
    )


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# Declared on every operation (the OpenAPI document says what clients, and schemathesis, may expect).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_response("a body that cannot be parsed at all"),
    401: _problem_response("missing, malformed or revoked credentials"),
    404: _problem_response("no such resource for this caller"),
    409: _problem_response("the resource is not in a state that allows this"),
    429: _problem_response("the tenant is over its rate limit; retry after Retry-After seconds"),
    413: _problem_response("too large: bytes or pixels over the limit"),
    415: _problem_response("not a supported image"),
    422: _problem_response("invalid request"),
    503: _problem_response("a dependency is unavailable; retry"),
}

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: list[tuple[type[errors.ImageSearchError], int]] = [
    (errors.TooManyPixels, 413),
    (errors.PayloadTooLarge, 413),
    (errors.ImageRejected, 415),
    (errors.InvalidRequest, 422),
    (errors.MalformedEvent, 400),
    (errors.NotFound, 404),
    (errors.ObjectNotFound, 404),
    (errors.Unauthorized, 401),
    (errors.Conflict, 409),
    (errors.TooManyRequests, 429),
    (errors.ServiceUnavailable, 503),
]


def problem(status: int, detail: str, *, title: str | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response; `type` is about:blank, so `title` is the status phrase."""
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(exc: errors.ImageSearchError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


async def _project_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ImageSearchError)
    status = status_for(exc)
    if status >= 500:
        logger.warning(
            "request failed", extra={"path": request.url.path, "status": status, "error": repr(exc)}
        )
    extra = {"reason": exc.reason} if isinstance(exc, errors.ImageRejected) else {}
    response = problem(status, exc.detail, **extra)
    if isinstance(exc, errors.TooManyRequests | errors.ServiceUnavailable):
        # The rate limit's wait; for a dependency, longer when it throttles or is misconfigured.
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        issues.append({"field": where, "message": str(err.get("msg", "invalid"))})
    detail = "; ".join(f"{i['field']}: {i['message']}" if i["field"] else i["message"] for i in issues)
    return problem(422, detail or "invalid request", errors=issues)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; a path served by several routes
        # (GET and POST /images) must list them all.
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug: log it with the traceback, tell the caller nothing about internals.
    logger.exception("unhandled error", extra={"path": request.url.path})
    return problem(500, "internal error")


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through problem+json."""
    app.add_exception_handler(errors.ImageSearchError, _project_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
