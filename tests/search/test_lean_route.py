"""POST /search's lean route (http/lean.py) answers exactly as FastAPI's own handling of the same route:
the same results, the same headers, the same problem+json for every bad request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from support.gallery import AddImages

from imagesearch.config import AuthMode, Settings
from imagesearch.http.lean import LeanJsonRoute
from imagesearch.local.functions import load_function
from imagesearch.local.server import local_app
from imagesearch.runtime import configure


@pytest.fixture
def gallery(add_images: AddImages) -> None:
    add_images(
        {"name": "red", "color": "red", "shape": "circle", "title": "red circle", "tags": "sea,evening"},
        {"name": "blue", "color": "blue", "shape": "square", "title": "blue square"},
        {"name": "green", "color": "green", "shape": "circle", "title": "green circle"},
    )


def both_ways(client: TestClient, monkeypatch: pytest.MonkeyPatch, send: Any) -> tuple[Any, Any]:
    """`send(client)` through the lean path, then through FastAPI's handling of the same route."""
    lean = send(client)
    with monkeypatch.context() as m:
        m.setattr(LeanJsonRoute, "_plain", lambda self, scope: False)
        full = send(client)
    return lean, full


def same_answer(lean: Any, full: Any, *, volatile: tuple[str, ...] = ()) -> None:
    assert lean.status_code == full.status_code
    assert lean.headers.get("content-type") == full.headers.get("content-type")
    assert sorted(lean.headers.keys()) == sorted(full.headers.keys())
    for name in ("www-authenticate", "retry-after", "allow"):
        assert lean.headers.get(name) == full.headers.get(name)
    lean_body, full_body = lean.json(), full.json()
    for key in volatile:
        lean_body.pop(key, None), full_body.pop(key, None)
    assert lean_body == full_body


def test_the_search_routes_are_lean_in_the_function_and_the_local_stack() -> None:
    for app in (load_function("search").app, local_app()):
        routes = [r for r in app.routes if getattr(r, "path", None) == "/search"]
        assert [type(r) for r in routes] == [LeanJsonRoute]


@pytest.mark.parametrize(
    "body",
    [
        {"query": "red circle"},
        {"query": "circle", "limit": 1},
        {"query": "circle", "mode": "keyword", "explain": True},
        {"query": "circle", "facets": ["tags", "year"], "limit": 2},
        {"query": "circle", "filters": {"tags": ["sea"]}},
    ],
)
def test_a_search_answers_the_same(
    client: TestClient, gallery: None, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> None:
    lean, full = both_ways(client, monkeypatch, lambda c: c.post("/search", json=body))
    assert lean.status_code == 200, lean.text
    same_answer(lean, full, volatile=("took_ms",))
    assert lean.headers["content-length"] == str(len(lean.content))


def test_the_next_page_answers_the_same(
    client: TestClient, gallery: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.post("/search", json={"query": "circle", "limit": 1}).json()
    assert first["next_cursor"]
    body = {"query": "circle", "limit": 1, "cursor": first["next_cursor"]}
    lean, full = both_ways(client, monkeypatch, lambda c: c.post("/search", json=body))
    assert lean.status_code == 200
    same_answer(lean, full, volatile=("took_ms",))


RAW_BAD_BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"{", "application/json"),
    (b"null", "application/json"),
    (b"[]", "application/json"),
    (b'"red"', "application/json"),
    (b'{"query": 5}', "application/json"),
    (b'{"query": "red", "limit": 0}', "application/json"),
    (b'{"query": "red", "limit": "many"}', "application/json"),
    (b'{"query": "red", "mode": "psychic"}', "application/json"),
    (b'{"query": "red", "cursor": "not a cursor"}', "application/json"),
    (b'{"query": "red", "unknown": 1}', "application/json"),
    (b'{"limit": 3}', "application/json"),
    (b"[" * 5000 + b"]" * 5000, "application/json"),
    (b'{"query": "red"}', "text/plain"),
    (b'{"query": "red"}', "application/json; charset=utf-8"),
    (b'{"query": "red"}', "application/problem+json"),
    ('{"query": "r\u00e9d"}'.encode("utf-16"), "application/json"),
]


@pytest.mark.parametrize(("raw", "content_type"), RAW_BAD_BODIES)
def test_odd_and_bad_bodies_get_the_same_answer(
    client: TestClient, gallery: None, monkeypatch: pytest.MonkeyPatch, raw: bytes, content_type: str
) -> None:
    def send(c: TestClient) -> Any:
        return c.post("/search", content=raw, headers={"content-type": content_type})

    lean, full = both_ways(client, monkeypatch, send)
    same_answer(lean, full, volatile=("took_ms",))


def test_a_body_without_a_length_goes_to_fastapi(
    client: TestClient, gallery: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": '
        yield b'"red circle"}'

    def send(c: TestClient) -> Any:
        return c.post("/search", content=chunks(), headers={"content-type": "application/json"})

    lean, full = both_ways(client, monkeypatch, send)
    assert lean.status_code == 200
    same_answer(lean, full, volatile=("took_ms",))


def test_other_methods_answer_as_before(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for send in (lambda c: c.get("/search"), lambda c: c.put("/search", json={"query": "red"})):
        lean, full = both_ways(client, monkeypatch, send)
        assert lean.status_code in (404, 405)
        same_answer(lean, full)


def test_oversized_requests_are_refused_as_before(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = b'{"query": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    lean, full = both_ways(
        client,
        monkeypatch,
        lambda c: c.post("/search", content=big, headers={"content-type": "application/json"}),
    )
    assert lean.status_code == 413
    same_answer(lean, full)
    headers = {"content-type": "application/json", "x-padding": "p" * 20_000}
    lean, full = both_ways(
        client, monkeypatch, lambda c: c.post("/search", json={"query": "x"}, headers=headers)
    )
    assert lean.status_code == 431
    same_answer(lean, full)


@pytest.fixture
def api_keys_on(settings: Settings) -> None:
    configure(settings.model_copy(update={"auth_mode": AuthMode.API_KEY, "api_key_cache_seconds": 0.0}))


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "isk_nonsense"}, {"authorization": "Bearer not-a-token"}, {"x-api-key": ""}],
    ids=["none", "unknown key", "bad bearer", "empty key"],
)
def test_auth_failures_are_the_same_problem(
    client: TestClient, api_keys_on: None, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str]
) -> None:
    lean, full = both_ways(
        client, monkeypatch, lambda c: c.post("/search", json={"query": "red"}, headers=headers)
    )
    assert lean.status_code == 401
    assert lean.headers["www-authenticate"] == "Bearer"
    same_answer(lean, full)


def test_a_dependency_override_is_honoured(client: TestClient, gallery: None) -> None:
    """Tests may swap a dependency: the route then runs through FastAPI, which applies the override."""
    from imagesearch.http.auth import current_tenant

    app: Any = load_function("search").app  # the app whose routes the local stack serves

    async def refuse() -> None:
        raise RuntimeError("overridden")

    app.dependency_overrides[current_tenant] = refuse
    try:
        response = client.post("/search", json={"query": "red"})
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error"


class SyncBody(BaseModel):
    """The body of the sync endpoint a lean route refuses (at module level, where FastAPI resolves it)."""

    limit: int


def test_a_route_of_another_shape_is_refused() -> None:
    from fastapi import FastAPI, Request, Response

    from imagesearch.http.lean import lean_post

    app = FastAPI()
    with pytest.raises(TypeError):

        @lean_post(app, "/odd")
        def odd(request: Request, limit: int) -> None:
            return None

    with pytest.raises(TypeError, match="async"):

        @lean_post(app, "/sync")
        def sync(body: SyncBody) -> Response:  # a sync endpoint: it would need the worker-thread hop
            return Response()


def test_the_lean_path_skips_the_router(
    client: TestClient, gallery: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LeanApp answers a plain search itself; the route's own handle (behind the router) is not used."""

    async def unreachable(self: LeanJsonRoute, scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("went through the router")

    monkeypatch.setattr(LeanJsonRoute, "handle", unreachable)
    assert client.post("/search", json={"query": "red circle"}).status_code == 200


def test_a_database_outage_is_the_same_problem(
    client: TestClient, gallery: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagesearch.errors import DatabaseUnavailable
    from imagesearch.runtime import get_runtime

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseUnavailable("the database is unavailable, please retry")

    client.post("/search", json={"query": "red circle"})  # the model record, cached
    monkeypatch.setattr(get_runtime().search.db, "aread", down)
    lean, full = both_ways(client, monkeypatch, lambda c: c.post("/search", json={"query": "red circle"}))
    assert lean.status_code == 503
    assert lean.headers["retry-after"]
    same_answer(lean, full)


def test_an_unexpected_error_is_the_same_500(
    client: TestClient, gallery: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagesearch.runtime import get_runtime

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(get_runtime().search, "asearch", broken)
    lean, full = both_ways(client, monkeypatch, lambda c: c.post("/search", json={"query": "red circle"}))
    assert lean.status_code == 500
    same_answer(lean, full)
