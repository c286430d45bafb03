"""Compose the local stack: every HTTP route of the functions on one app (the API, and the embed function's
POST /events), plus /files and the web page."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from imagesearch.http.app import create_app
from imagesearch.local.files import files_router
from imagesearch.local.functions import load_function
from imagesearch.storage.filesystem import FileSystemStorage
from imagesearch.web import STATIC_DIR


def local_app(storage: FileSystemStorage | None = None) -> FastAPI:
    """One ASGI app with every route of the upload, search and embed functions (the same route objects)."""
    app = create_app("imagesearch (local stack)")
    seen = {
        (route.path, frozenset(route.methods or ())) for route in app.routes if isinstance(route, APIRoute)
    }
    for name in ("upload", "search", "embed"):
        function_app: FastAPI = load_function(name).app
        for route in function_app.routes:
            if isinstance(route, APIRoute) and (route.path, frozenset(route.methods or ())) not in seen:
                seen.add((route.path, frozenset(route.methods or ())))
                app.router.routes.append(route)
    if storage is not None:
        app.include_router(files_router(storage))
    # Last, so every API route wins: the web page and its assets.
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="web")
    return app
