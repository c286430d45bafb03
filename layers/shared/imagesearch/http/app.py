"""The FastAPI application factory shared by both HTTP functions and the local server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from imagesearch import __version__
from imagesearch.http.health import router as health_router
from imagesearch.http.problems import PROBLEM_RESPONSES, Problem, install_problem_handlers, problem

# The most any request may carry (the largest upload plus multipart overhead), and a JSON body.
MAX_BODY_BYTES = 64 * 1024 * 1024 + 64 * 1024
JSON_BODY_BYTES = 1024 * 1024


class DeclaredBodyLimit:
    """413 problem+json for a declared Content-Length over the limit, before anything reads the body.

    FastAPI's own max_body_size stays behind it for bodies without a length (it answers in plain text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"")
            is_json = headers.get(b"content-type", b"").split(b";")[0].strip() == b"application/json"
            limit = JSON_BODY_BYTES if is_json else MAX_BODY_BYTES
            if declared.isdigit() and int(declared) > limit:
                response = problem(413, f"the request body is over the limit of {limit} bytes")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(title: str, routers: Iterable[APIRouter] = ()) -> FastAPI:
    """An app with problem+json errors, GET /health and the given routers."""
    app = FastAPI(title=title, version=__version__, responses=PROBLEM_RESPONSES, max_body_size=MAX_BODY_BYTES)
    install_problem_handlers(app)
    app.add_middleware(DeclaredBodyLimit)
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
