"""The FastAPI application factory shared by both HTTP functions and the local server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from imagesearch import __version__
from imagesearch.http.health import router as health_router
from imagesearch.http.lean import LeanApp
from imagesearch.http.limits import MAX_BODY_BYTES, refusal
from imagesearch.http.problems import PROBLEM_RESPONSES, Problem, install_problem_handlers


class RequestLimits:
    """431 problem+json for headers over MAX_HEADER_BYTES, 413 for a declared Content-Length over the body
    limit, before anything reads the body or looks at a header value (an API key of a megabyte is not hashed).

    FastAPI's own max_body_size stays behind it for bodies without a length (it answers in plain text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = refusal(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON, serialised once by pydantic (fields left unset are left out).

    A route that returns a Response skips FastAPI's response handling, which validates the returned
    model again against `response_model` and, for a sync route, does so on a second thread-pool hop
    (docs/search.md, "The HTTP layer's own cost"). The route keeps `response_model` for its OpenAPI
    schema, and the schemathesis tests check every answer against that schema.
    """
    return Response(model.model_dump_json(exclude_unset=True), status_code, media_type="application/json")


def create_app(title: str, routers: Iterable[APIRouter] = ()) -> FastAPI:
    """An app with problem+json errors, GET /health and the given routers."""
    # LeanApp: FastAPI, with the lean routes' plain requests answered before its middleware (http/lean.py).
    app = LeanApp(title=title, version=__version__, responses=PROBLEM_RESPONSES, max_body_size=MAX_BODY_BYTES)
    install_problem_handlers(app)
    app.add_middleware(RequestLimits)
    _declare_problem_schema(app)
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    return app


def _declare_problem_schema(app: FastAPI) -> None:
    """Add the Problem model to components/schemas, which the problem responses refer to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
