"""The FastAPI application factory shared by both HTTP functions and the local server."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI

from imagesearch import __version__
from imagesearch.http.health import router as health_router
from imagesearch.http.problems import install_problem_handlers


def create_app(title: str, routers: Iterable[APIRouter] = ()) -> FastAPI:
    """An app with problem+json errors, GET /health and the given routers."""
    app = FastAPI(title=title, version=__version__)
    install_problem_handlers(app)
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    return app
