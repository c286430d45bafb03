"""A route that answers the common case of a JSON POST without FastAPI's request handling (POST /search).

FastAPI's handler solves the dependency tree, parses and validates the body through its own field
machinery and wraps the endpoint in exit stacks and telemetry hooks: about a quarter of a search's CPU in
the app (docs/search.md, "Where a search's CPU goes"). A `LeanJsonRoute` is an APIRoute (same OpenAPI
operation, same exception handlers) whose `handle` does the same work directly when the request is the
plain case: a POST with a declared Content-Length and a JSON content type whose body the route's
model accepts. Anything else (a bad body, another content type, a chunked body, dependency overrides) goes
to FastAPI's own handling with the body replayed, before anything has run, so every error answer (422
problem+json included) is FastAPI's own. Errors raised by the dependencies or the endpoint reach the
app's exception handlers as they would from FastAPI's handler.

It serves endpoints of one shape, checked when the route is made: one body parameter (a pydantic model),
dependencies that are `async def` without sub-dependencies or parameters of their own other than the
Request, and an `async def` endpoint that returns a Response (a sync one would cost the worker-thread
hop this route exists to avoid; the endpoint hands blocking work to a thread itself). `LeanApp`
(below) sends such requests to the route before FastAPI's middleware and the router. FastAPI's own
telemetry (OpenTelemetry, when a provider is set) does not see them.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagesearch.http.limits import refusal

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class LeanJsonRoute(APIRoute):
    """An APIRoute with a direct path for a valid JSON body (see the module's docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        dependant = self.dependant
        if (
            len(dependant.body_params) != 1
            or dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.request_param_name
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
        ):
            raise TypeError(f"{path}: a lean route takes one JSON body and dependencies")
        field = dependant.body_params[0]
        model = field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{path}: the body of a lean route is a pydantic model")
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError(f"{path}: the endpoint of a lean route is async")
        for dependency in dependant.dependencies:
            if (
                dependency.dependencies
                or dependency.body_params
                or dependency.query_params
                or dependency.header_params
                or dependency.path_params
                or dependency.cookie_params
                or dependency.name is None
                or not inspect.iscoroutinefunction(dependency.call)
            ):
                raise TypeError(f"{path}: {dependency.name} is not an async dependency without parameters")
        self._body_name: str = field.name
        self._body_model: type[BaseModel] = model
        self._dependencies: list[tuple[str, Callable[..., Any], str | None]] = [
            (d.name, d.call, d.request_param_name)
            for d in dependant.dependencies
            if d.name is not None and d.call is not None
        ]

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.answer(scope, receive, send, fallback=functools.partial(APIRoute.handle, self))

    async def answer(self, scope: Scope, receive: Receive, send: Send, *, fallback: ASGIApp) -> None:
        """The lean answer to a POST, or `fallback`'s (FastAPI's handling) with the body replayed."""
        if scope["method"] != "POST" or not self._plain(scope):
            await fallback(scope, receive, send)
            return
        messages = await _read(receive)
        replay = _replaying(messages, receive)
        if messages[-1]["type"] != "http.request":  # the client went away: FastAPI's handling says so
            await fallback(scope, replay, send)
            return
        body = b"".join(m.get("body", b"") for m in messages)
        try:
            data = self._body_model.model_validate(json.loads(body))
        except (ValueError, RecursionError):  # FastAPI's handling answers it (422, 400), from the start
            await fallback(scope, replay, send)
            return
        request = Request(scope, replay)
        values: dict[str, Any] = {self._body_name: data}
        for name, call, request_param in self._dependencies:
            values[name] = await (call(**{request_param: request}) if request_param else call())
        response = await self.endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{self.path}: a lean route's endpoint returns a Response")
        await response(scope, replay, send)

    def _plain(self, scope: Scope) -> bool:
        """A JSON body of a declared length, on an app without dependency overrides (tests' swaps)."""
        overrides = self.dependency_overrides_provider  # the app that made the route, as FastAPI asks
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            return False
        content_type, length = None, None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
        return (
            length is not None
            and length.isdigit()
            and content_type is not None
            and content_type.split(b";", 1)[0].strip().lower() == b"application/json"
        )


async def _read(receive: Receive) -> list[Message]:
    """The request's messages up to its last body part (or a disconnect), as received."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives `messages` again, then what `receive` gives."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def lean_post(app: FastAPI, path: str, **kwargs: Any) -> Callable[[Endpoint], Endpoint]:
    """`@app.post(path, **kwargs)` with a LeanJsonRoute: the same operation in the OpenAPI document."""

    def register(endpoint: Endpoint) -> Endpoint:
        app.router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=LeanJsonRoute, **kwargs
        )
        return endpoint

    return register


class LeanApp(FastAPI):
    """FastAPI, answering a POST to a LeanJsonRoute's path before anything else runs: before FastAPI's own
    middleware (its error, telemetry and body-limit layers), the app's request limits (checked here the
    same way), the router and the rest, which cost about 0.2 ms a request (docs/search.md, "Where a
    search's CPU goes", "The read under the cursor"). Errors go through the app's exception handlers, as
    they would behind the router, and an unexpected one gets the app's 500 answer, as FastAPI's
    ServerErrorMiddleware gives it, before it is raised again for the server to log. Whatever the route
    does not answer itself (a refused or bad request) goes down the whole stack as before."""

    _lean: dict[str, ASGIApp] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("root_path")
            and not self.root_path
        ):
            lean = self._lean_routes().get(scope["path"])
            if lean is not None and refusal(scope) is None:
                scope["app"] = self
                await self._answer(lean, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _answer(self, lean: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await lean(scope, receive, sending)
        except Exception as e:
            handler = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
            if handler is not None and not started:
                response = handler(Request(scope, receive), e)
                if inspect.isawaitable(response):
                    response = await response
                await response(scope, receive, send)
            raise

    def _lean_routes(self) -> dict[str, ASGIApp]:
        """The lean routes by path, each behind the app's exception handlers (built on first use, when every
        route and handler is in place); a request the route does not answer itself goes to the whole app."""
        if self._lean is None:
            handlers = {k: v for k, v in self.exception_handlers.items() if k not in (500, Exception)}
            whole = functools.partial(FastAPI.__call__, self)
            self._lean = {
                route.path: ExceptionMiddleware(
                    functools.partial(route.answer, fallback=whole), handlers=handlers, debug=self.debug
                )
                for route in self.router.routes
                if isinstance(route, LeanJsonRoute) and not route.param_convertors
            }
        return self._lean
