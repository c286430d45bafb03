"""What a generic plan costs the search statement, against planning each query for its own values.

    .venv/bin/python bench/plans.py [--sizes 3000,10000] [--rounds 3]

The app's own hybrid statement (built by SearchService.query, text model bypassed) for 100 queries over a
clustered corpus of one tenant, run through psycopg on one connection in three ways, interleaved query by
query so that drift hits all alike:

- custom: an unnamed statement, planned for its values every time: what the app does
  (`prepare_threshold=None`);
- generic: a prepared statement under `plan_cache_mode = force_generic_plan`: the plan PostgreSQL may
  switch a prepared statement to after five runs;
- psycopg's default (`prepare_threshold=5`, `plan_cache_mode = auto`): what the app did before, with the
  share of executions PostgreSQL ran on its generic plan (`pg_prepared_statements.generic_plans`).

Prints the median and p95 latency of each, and each against custom.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from _corpus import load, make_corpus, query_texts, query_vectors
from _lookup_model import LookupModel
from _postgres import migrated_database
from _search_app import MODEL_ID, QUERIES, log
from pgvector.psycopg import register_vector

from imagesearch.auth.tenant import DEFAULT_TENANT
from imagesearch.config import SearchStrategy, load_settings
from imagesearch.db.pool import hnsw_settings
from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS
from imagesearch.runtime import Runtime
from imagesearch.search.plan import plan_search
from imagesearch.search.sql import SearchQuery
from imagesearch.tables import format_table

MODES = ("custom", "generic", "psycopg default")


def statements(url: str, texts: list[str], vectors: np.ndarray) -> list[SearchQuery]:
    runtime = Runtime(
        load_settings(database_url=url, storage_url="file:///tmp/unused"),
        configured_model=LookupModel(MODEL_ID, texts, vectors),
    )
    strategy = SearchStrategy()
    queries = [
        runtime.search.query(
            DEFAULT_TENANT, plan_search(query=t, image_id=None, mode="hybrid", limit=10), strategy
        )
        for t in texts
    ]
    runtime.close()
    return queries


def connect(url: str, *, prepare_threshold: int | None, plan_cache_mode: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True, prepare_threshold=prepare_threshold)
    register_vector(conn)
    for name, value in {
        **hnsw_settings(SearchStrategy().effective_ef_search),
        "plan_cache_mode": plan_cache_mode,
    }.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    return conn


def bench_size(size: int, tmp: Path, rounds: int) -> list[list[str]]:
    log(f"corpus {size}: generating and loading")
    corpus = make_corpus(size)
    with migrated_database(tmp, "plans", LOCAL_SERVER_SETTINGS) as url:
        with psycopg.connect(url) as conn:
            register_vector(conn)
            load(conn, corpus, model_id=MODEL_ID)
        queries = statements(url, query_texts(corpus, QUERIES), query_vectors(corpus, QUERIES))
        conns = {
            "custom": connect(url, prepare_threshold=None, plan_cache_mode="auto"),
            "generic": connect(url, prepare_threshold=0, plan_cache_mode="force_generic_plan"),
            "psycopg default": connect(url, prepare_threshold=5, plan_cache_mode="auto"),
        }
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for query in queries[:5]:  # warm: caches, and psycopg's count towards preparing
            for conn in conns.values():
                conn.execute(query.sql, query.params).fetchall()
        for _ in range(rounds):
            for query in queries:
                for mode, conn in conns.items():
                    started = time.perf_counter()
                    conn.execute(query.sql, query.params).fetchall()
                    times[mode].append(time.perf_counter() - started)
        executions = (
            conns["psycopg default"]
            .execute(
                "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
                "FROM pg_prepared_statements"
            )
            .fetchone()
        )
        for conn in conns.values():
            conn.close()
    generic, custom = (int(executions[0]), int(executions[1])) if executions else (0, 0)
    base = float(np.median(times["custom"]))
    rows = []
    for mode in MODES:
        ms = np.array(times[mode]) * 1000
        note = f"{generic} of {generic + custom} on the generic plan" if mode == "psycopg default" else ""
        rows.append(
            [
                f"{size:,}",
                mode,
                f"{np.median(ms):.2f}",
                f"{np.percentile(ms, 95):.2f}",
                f"{np.median(ms) / (base * 1000):.2f}",
                note,
            ]
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="3000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: list[list[str]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            rows += bench_size(size, Path(tmp), args.rounds)
    print(
        f"\nhybrid search statement, {QUERIES} queries x {args.rounds} rounds, "
        "one connection per way, interleaved"
    )
    print(format_table(["corpus", "plan", "p50 ms", "p95 ms", "p50 vs custom", "psycopg's default"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
