"""The search request's CPU, layer by layer: each layer timed alone against a real database, one request
at a time, so the differences between the rows say what each layer adds.

    .venv/bin/python bench/_profile_parts.py [--size 10000] [--requests 1000] [--rounds 5]

10,000 images as bench/search_ab.py loads them, the text model bypassed, hybrid queries (limit 10). Rows,
each containing the one above it:

  psycopg: the statement alone         the search statement on a pooled connection (autocommit), rows as
                                       dicts: what libpq and psycopg cost without any settings
  psycopg: Database.read               the app's read: BEGIN, set_config (SET LOCAL), statement, COMMIT
                                       pipelined (the strategy's HNSW settings and statement_timeout)
  SearchService.search                 + the plan, the query vector (a lookup here), the result models
  + JSON                               + the response's serialisation (http.app.json_response)
  the response alone                   only the answer from rows read once before: the result models, the
                                       20 URLs from the cache, the cursor, the JSON (not in the sums)
  - (steps)                            steps of the search, each alone in a loop: the body's model, the
                                       plan, the cursor's fingerprint, the statement and its parameters,
                                       the response's models, URLs and cursor, their JSON (not in the sums)
  ASGI app in-process                  the search function's app called directly (no sockets): routing,
                                       validation, the tenant dependency, the thread-pool hop
  uvicorn, one worker (wrk, c=1)       the same app over HTTP (bench/_search_server.py): the server's
                                       CPU per request, from its process's CPU time

CPU is process time (user + system) per request, median of the rounds; the database's own work runs in
PostgreSQL's processes and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _search_app import http_load, in_process_search, loaded_corpus, search_server, warm
from psycopg.rows import dict_row

from imagesearch.tables import format_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1000, help="per layer and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="the uvicorn row's load")
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--database-url", help="a database the bench loaded before (with --queries)")
    parser.add_argument("--queries", type=Path, help="its queries (.npz: texts, vectors)")
    args = parser.parse_args()
    args.workers = 1

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.database_url and args.queries:  # a corpus loaded before (saves its minute and a half)
            rows = measure(args.database_url, args.queries, tmp, args)
        else:
            with loaded_corpus(tmp, args.size, "parts") as (url, queries_file, _):
                rows = measure(url, queries_file, tmp, args)

    table, previous = [], 0.0
    for name, us in rows:
        alone = "not in the sums" in name
        added = f"{us - previous:+.0f}" if previous and not alone else ""
        table.append([name, f"{us:.0f}", added, f"{us / rows[-1][1]:.2f}"])
        previous = previous if alone else us
    print(
        f"\n{args.size:,} images, hybrid POST /search, limit 10; CPU us per request (median of {args.rounds})"
    )
    print(format_table(["layer", "CPU us", "added us", "share of uvicorn's"], table))
    return 0


def measure(url: str, queries_file: Path, tmp: Path, args: argparse.Namespace) -> list[tuple[str, float]]:
    """The in-process layers, then the app under uvicorn."""
    data = np.load(queries_file)
    texts, vectors = [str(t) for t in data["texts"]], data["vectors"]
    bodies = [{"query": t, "limit": 10} for t in texts]
    rows = in_process(url, tmp, texts, vectors, bodies, args)
    with search_server(url, queries_file, args) as server:
        warm(server.base, bodies)
        samples = []
        for _ in range(args.rounds):
            with server.measure() as usage:
                result = http_load(f"{server.base}/search", bodies, concurrency=1, seconds=args.seconds)
            samples.append(usage.us_per_request(result.requests))
    rows.append(("uvicorn, one worker (wrk, c=1)", statistics.median(samples)))
    return rows


def in_process(
    url: str,
    tmp: Path,
    texts: list[str],
    vectors: np.ndarray,
    bodies: list[dict[str, Any]],
    args: argparse.Namespace,
) -> list[tuple[str, float]]:
    from http_overhead import caller

    from imagesearch.auth.tenant import DEFAULT_TENANT
    from imagesearch.http.app import json_response
    from imagesearch.local.functions import load_function
    from imagesearch.search.plan import plan_search
    from imagesearch.search.schemas import SearchRequest
    from imagesearch.search.service import _ranked

    runtime, plans, queries, settings = in_process_search(
        url, tmp, texts, vectors, candidates=args.candidates, ef_search=args.ef_search
    )
    service, db = runtime.search, runtime.search_database
    strategy = service.strategy
    app = load_function("search").app
    record = service.model_for(strategy)
    answers = []
    for plan, query in zip(plans, queries, strict=True):
        paged, fingerprint = service._paged(plan, record, None)
        rows = db.read(query.sql, query.params, settings=settings, row_factory=dict_row)
        answers.append((paged, fingerprint, _ranked(paged, rows)))

    def answer_alone(i: int) -> Any:
        plan, fingerprint, ranked = answers[i]
        return service._answer(DEFAULT_TENANT, plan, record, fingerprint, ranked, 0.0, 0.0, None, None)

    def response_alone(i: int) -> Any:
        return json_response(answer_alone(i))

    answered = [answer_alone(i) for i in range(len(answers))]
    calls = [caller(app, "/search", json.dumps(body).encode()) for body in bodies]

    def statement_alone(i: int) -> Any:
        with db._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(queries[i].sql, queries[i].params)
            return cur.fetchall()

    layers: list[tuple[str, Callable[[int], Any]]] = [
        ("psycopg: the statement alone", statement_alone),
        (
            "psycopg: Database.read",
            lambda i: db.read(queries[i].sql, queries[i].params, settings=settings, row_factory=dict_row),
        ),
        ("SearchService.search", lambda i: service.search(DEFAULT_TENANT, plans[i])),
        ("+ JSON", lambda i: json_response(service.search(DEFAULT_TENANT, plans[i]))),
        ("the response alone (not in the sums)", response_alone),
        # Steps of the search alone, each in a loop (not in the sums either).
        ("- the body's model (not in the sums)", lambda i: SearchRequest.model_validate(bodies[i])),
        (
            "- the plan (not in the sums)",
            lambda i: plan_search(query=texts[i], image_id=None, mode="hybrid", limit=10),
        ),
        ("- the cursor's fingerprint (not in the sums)", lambda i: plans[i].fingerprint(record.id)),
        (
            "- the statement and its parameters (not in the sums)",
            lambda i: service.query(DEFAULT_TENANT, plans[i], strategy, record=record),
        ),
        ("- the response's models, URLs, cursor (not in the sums)", answer_alone),
        ("- their JSON (not in the sums)", lambda i: json_response(answered[i])),
    ]

    async def asgi() -> float:
        for i in range(200):
            await calls[i % len(calls)]()
        started = time.process_time()
        for i in range(args.requests):
            await calls[i % len(calls)]()
        return (time.process_time() - started) * 1e6 / args.requests

    def timed(fn: Callable[[int], Any]) -> float:
        started = time.process_time()
        for i in range(args.requests):
            fn(i % len(queries))
        return (time.process_time() - started) * 1e6 / args.requests

    for _, fn in layers:  # warm-up
        for i in range(200):
            fn(i % len(queries))
    samples: dict[str, list[float]] = {name: [] for name, _ in layers}
    samples["ASGI app in-process"] = []
    for _ in range(args.rounds):
        for name, fn in layers:
            samples[name].append(timed(fn))
        samples["ASGI app in-process"].append(run(asgi()))
    return [(name, statistics.median(values)) for name, values in samples.items()]


def run(coroutine: Any) -> Any:
    """On uvloop when it is installed, as uvicorn runs the app."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    sys.exit(main())
