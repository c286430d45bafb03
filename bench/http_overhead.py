"""What the HTTP layer itself costs a search: FastAPI's request handling around a canned answer.

    .venv/bin/python bench/http_overhead.py [--requests 3000] [--rounds 5]

The search function's own app answers POST /search in-process (ASGI called directly, no sockets), with
the service's search replaced by a canned page of 10 results, so what is timed is routing, body
validation, dependencies, the thread-pool hop of a sync route and serialisation: the per-request work
that sits on top of the SQL at every corpus size. Beside it, in the same run, routes written the other
ways FastAPI allows, with the same answer:

  nested deps + response_model   the service built from six dependencies (settings, database, storage,
                                 models, shadow, URL cache), the answer validated again against
                                 response_model (on a second thread-pool hop, for a sync route)
  flat dep + response_model      one dependency without sub-dependencies, FastAPI's serialisation
  flat dep + JSON response       one dependency, the route returns its JSON (what the app's other
                                 routes do)

The search function's POST /search is a lean route (imagesearch.http.lean): its plain requests skip the
router, FastAPI's request handling and its per-request middleware, and take one executor hop.

Rounds are interleaved so drift hits every variant alike; medians of the rounds' means, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Annotated, Any

os.environ.setdefault("IMAGESEARCH_DATABASE_URL", "postgresql://bench@127.0.0.1:1/unused")
os.environ.setdefault("IMAGESEARCH_STORAGE_URL", f"file://{tempfile.mkdtemp()}")
os.environ.setdefault("IMAGESEARCH_LOG_LEVEL", "WARNING")

from _canned import canned_response
from fastapi import Depends, FastAPI, Response

from imagesearch.auth.tenant import Tenant
from imagesearch.http.app import create_app, json_response
from imagesearch.http.auth import TenantDep
from imagesearch.local.functions import load_function
from imagesearch.search.schemas import SearchRequest, SearchResponse
from imagesearch.search.service import SearchPlan, SearchService
from imagesearch.tables import format_table

CANNED = canned_response(signed=True)


def canned_search(self: SearchService, tenant: Tenant, plan: SearchPlan, *, cursor: str | None = None) -> Any:
    return CANNED


async def _settings() -> object:
    return object()


async def _database() -> object:
    return object()


async def _storage() -> object:
    return object()


async def _models(
    settings: Annotated[object, Depends(_settings)], db: Annotated[object, Depends(_database)]
) -> object:
    return object()


async def _shadow(settings: Annotated[object, Depends(_settings)]) -> None:
    return None


async def _urls(
    settings: Annotated[object, Depends(_settings)], storage: Annotated[object, Depends(_storage)]
) -> object:
    return object()


async def _nested_service(
    db: Annotated[object, Depends(_database)],
    storage: Annotated[object, Depends(_storage)],
    settings: Annotated[object, Depends(_settings)],
    models: Annotated[object, Depends(_models)],
    shadow: Annotated[None, Depends(_shadow)],
    urls: Annotated[object, Depends(_urls)],
) -> object:
    return object()


async def _flat_service() -> object:
    return object()


def variants_app() -> FastAPI:
    """The same answer through the other ways of writing the route."""
    app = create_app("bench")

    @app.post("/nested", response_model=SearchResponse, response_model_exclude_unset=True)
    def nested(
        body: SearchRequest, tenant: TenantDep, service: Annotated[object, Depends(_nested_service)]
    ) -> SearchResponse:
        return CANNED

    @app.post("/flat", response_model=SearchResponse, response_model_exclude_unset=True)
    def flat(
        body: SearchRequest, tenant: TenantDep, service: Annotated[object, Depends(_flat_service)]
    ) -> SearchResponse:
        return CANNED

    @app.post("/direct", response_model=SearchResponse)
    def direct(
        body: SearchRequest, tenant: TenantDep, service: Annotated[object, Depends(_flat_service)]
    ) -> Response:
        return json_response(CANNED)

    return app


def caller(app: Any, path: str, body: bytes) -> Callable[[], Any]:
    """One POST of `body` to `path`, straight into the ASGI app; checks the status and the answer."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def call() -> bytes:
        delivered = False
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            else:
                out["body"] += message.get("body", b"")

        await app(dict(scope), receive, send)
        if out["status"] != 200:
            raise RuntimeError(f"{path}: {out['status']} {out['body'][:300]!r}")
        return bytes(out["body"])

    return call


async def measure(calls: dict[str, Callable[[], Any]], requests: int, rounds: int) -> dict[str, list[float]]:
    answers = {name: json.loads(await call()) for name, call in calls.items()}
    expected = json.loads(CANNED.model_dump_json(exclude_unset=True))
    for name, answer in answers.items():  # every variant says the same thing
        if answer != expected:
            raise RuntimeError(f"{name} answered differently")
    for call in calls.values():  # warm-up
        for _ in range(300):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(requests):
                await call()
            samples[name].append((time.perf_counter() - started) / requests * 1e6)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    SearchService.search = canned_search  # type: ignore[method-assign]
    body = json.dumps({"query": "a red circle on a grey background", "limit": 10}).encode()
    variants = variants_app()
    calls = {
        "nested deps + response_model": caller(variants, "/nested", body),
        "flat dep + response_model": caller(variants, "/flat", body),
        "flat dep + JSON response": caller(variants, "/direct", body),
        "search function (as deployed)": caller(load_function("search").app, "/search", body),
    }
    samples = asyncio.run(measure(calls, args.requests, args.rounds))
    base = statistics.median(samples["nested deps + response_model"])
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append([name, f"{median:.0f}", f"{min(values):.0f}", f"{median / base:.2f}"])
    print(format_table(["route", "median us", "best us", "vs nested + response_model"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
