"""What the search features cost: cutoff, date sort, facets, diversity and collapse against plain hybrid.

    .venv/bin/python bench/search_features.py [--images 100000] [--rounds 5] [--explain]

A corpus of clustered 512-d vectors with captions and tags (_corpus.py, as bench/search.py loads it), each
image uploaded at a random time over ten years (so the year and month facets have values), is loaded with
COPY into an embedded PostgreSQL of its own. Requests are driven in-process, as the search route runs
them: plan_search, SearchService.search (the text model bypassed by a lookup of the query vectors; the
statement, its rows, the re-ranking) and the response serialised to JSON, one request at a time. Each
variant runs the same 100 queries; the variants are interleaved query by query (their order rotating) over
several rounds after an unmeasured warm-up round, so that each sees the same conditions on a shared,
noisy machine. Per variant: wall time per request (p50, p95; and the median of the per-request difference
to plain hybrid for the same query and round, the least noisy comparison), the statement's own time (the
database call, rows fetched), the app's CPU per request (time.process_time: every thread of the process,
numpy's BLAS threads included) and PostgreSQL's (its client backends' CPU, from /proc). Target (the
issue): each feature adds under 20% to plain hybrid's p50 at 100,000 images.

numpy's BLAS runs as many threads as there are cores unless OPENBLAS_NUM_THREADS says otherwise; the
package sets it to 1 unless it is set (imported first here, as the functions do), and the header of the
table says which ran. --explain prints EXPLAIN (ANALYZE, BUFFERS) of one query's statement for
each variant.
"""

from __future__ import annotations

# First, as the functions and the CLI import it: it sets OPENBLAS_NUM_THREADS before numpy loads.
import imagesearch  # noqa: F401

# isort: split
import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
from _corpus import load, make_corpus, query_texts, query_vectors
from _lookup_model import LookupModel
from _postgres import migrated_database
from _search_app import MODEL_ID, QUERIES, log
from pgvector.psycopg import register_vector

from imagesearch.auth.tenant import DEFAULT_TENANT
from imagesearch.config import load_settings
from imagesearch.db.pool import hnsw_settings
from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS
from imagesearch.runtime import Runtime
from imagesearch.search.plan import SearchPlan, plan_search
from imagesearch.search.schemas import SearchResponse, effective_cutoff
from imagesearch.search.service import SearchService
from imagesearch.tables import format_table

FACETS = ["tags", "year", "month"]
# Each variant: the request body's fields beside {"query": ..., "limit": 10} (mode hybrid).
VARIANTS: dict[str, dict[str, Any]] = {
    "plain hybrid": {},
    "cutoff auto": {"cutoff": "auto"},
    "sort newest (cutoff auto)": {"sort": "newest"},
    "facets tags, year, month": {"facets": FACETS},
    "cutoff auto + facets": {"cutoff": "auto", "facets": FACETS},
    "diversity 0.5": {"diversity": 0.5},
    "collapse duplicates": {"collapse": "duplicates"},
    "all: cutoff, facets, diversity, collapse": {
        "cutoff": "auto",
        "facets": FACETS,
        "diversity": 0.5,
        "collapse": "duplicates",
    },
}
BASELINE = "plain hybrid"
YEARS = 10


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    app_cpu_ms: list[float] = field(default_factory=list)
    pg_cpu_ms: float = 0.0  # summed: /proc counts in clock ticks (10 ms), so only the total means much
    results: list[int] = field(default_factory=list)
    errors: int = 0
    keys: list[tuple[int, int]] = field(default_factory=list)  # (round, query) of each wall_ms


@dataclass(frozen=True)
class Variant:
    fields: dict[str, Any]
    service: SearchService


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="measured passes over the queries")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each variant's statement")
    args = parser.parse_args()

    log(f"corpus {args.images}: generating")
    corpus = make_corpus(args.images)
    rng = np.random.default_rng(17)
    start = datetime(2026 - YEARS, 1, 1, tzinfo=UTC)
    seconds = rng.integers(0, YEARS * 365 * 86400, size=args.images)
    created_at = [start + timedelta(seconds=int(s)) for s in seconds]
    texts = query_texts(corpus, QUERIES)
    vectors = query_vectors(corpus, QUERIES)

    with (
        tempfile.TemporaryDirectory() as tmp,
        migrated_database(Path(tmp), "bench", {**LOCAL_SERVER_SETTINGS, "shared_buffers": "512MB"}) as url,
    ):
        with psycopg.connect(url) as conn:
            register_vector(conn)
            log(f"corpus {args.images}: loading")
            timings = load(conn, corpus, model_id=MODEL_ID, created_at=created_at)
        log(f"corpus {args.images}: copy {timings['copy_s']:.1f} s, index {timings['index_s']:.1f} s")

        runtime = Runtime(
            load_settings(database_url=url, storage_url=f"file://{tmp}/objects"),
            configured_model=LookupModel(MODEL_ID, texts, vectors),
        )
        service = runtime.search
        sql_ms = timed_reads(service)
        variants = {name: Variant(fields, service) for name, fields in VARIANTS.items()}
        with psycopg.connect(url, autocommit=True) as monitor:
            if args.explain:
                explain(service, monitor, texts[0])
            samples = measure(variants, monitor, texts, args.rounds, sql_ms)
        runtime.close()

    load_avg = " / ".join(f"{x:.2f}" for x in psutil.getloadavg())
    print(
        f"\n{args.images:,} images, {QUERIES} queries x {args.rounds} rounds per variant, one request at a "
        f"time; load average at the end {load_avg} ({psutil.cpu_count()} cores); "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}\n"
    )
    print(format_table(HEADER, table(samples)))
    return 0


HEADER = [
    "variant",
    "p50 ms",
    "p95 ms",
    "p50 vs plain",
    "paired diff p50 ms",
    "SQL p50 ms",
    "app CPU ms/req",
    "vs plain",
    "PG CPU ms/req",
    "vs plain",
    "results/req",
    "errors",
]


def body_plan(text: str, fields: dict[str, Any]) -> SearchPlan:
    """The plan the search route makes of {"query": text, "limit": 10, **fields} (functions/search/app.py)."""
    sort = fields.get("sort", "relevance")
    return plan_search(
        query=text,
        image_id=None,
        mode="hybrid",
        limit=10,
        cutoff=effective_cutoff(fields.get("cutoff"), sort, None),
        sort=sort,
        facets=fields.get("facets"),
        diversity=fields.get("diversity", 0.0),
        collapse=fields.get("collapse") == "duplicates",
    )


def timed_reads(service: SearchService) -> list[float]:
    """Wrap the service's database read: the statement's own time (round trip included) lands in the list."""
    times: list[float] = []
    read = service.db.read

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return read(*args, **kwargs)
        finally:
            times.append((time.perf_counter() - started) * 1000)

    setattr(service.db, "read", timed)  # noqa: B010 - an instance attribute over the method
    return times


def backends(monitor: psycopg.Connection) -> list[psutil.Process]:
    """The database's client backends other than the monitor's own: the service's pool connections."""
    rows = monitor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchall()
    return [psutil.Process(pid) for (pid,) in rows]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def request(variant: Variant, text: str) -> SearchResponse:
    """One request as the route serves it: plan, search, JSON."""
    response = variant.service.search(DEFAULT_TENANT, body_plan(text, variant.fields))
    response.model_dump_json(exclude_unset=True)
    if "facets" in variant.fields and not (response.facets and response.facets.get("year")):
        raise RuntimeError(f"no year facet for {text!r}: {response.facets}")
    return response


def measure(
    variants: dict[str, Variant],
    monitor: psycopg.Connection,
    texts: list[str],
    rounds: int,
    sql_ms: list[float],
) -> dict[str, Samples]:
    names = list(variants)
    samples = {name: Samples() for name in names}
    log("warm-up round")
    for text in texts:
        for name in names:
            request(variants[name], text)
    for r in range(rounds):
        log(f"round {r + 1} of {rounds}")
        processes = backends(monitor)
        for q, text in enumerate(texts):
            shift = (r * len(texts) + q) % len(names)  # each variant first, second, ... equally often
            for name in names[shift:] + names[:shift]:
                sample = samples[name]
                del sql_ms[:]
                pg_before = cpu_seconds(processes)
                cpu_before = time.process_time()
                started = time.perf_counter()
                try:
                    count = len(request(variants[name], text).results)
                except Exception as error:  # noqa: BLE001 - counted and shown, the bench goes on
                    log(f"{name} / {text!r}: {error!r}")
                    sample.errors += 1
                    continue
                sample.wall_ms.append((time.perf_counter() - started) * 1000)
                sample.app_cpu_ms.append((time.process_time() - cpu_before) * 1000)
                sample.pg_cpu_ms += (cpu_seconds(processes) - pg_before) * 1000
                sample.sql_ms.append(sum(sql_ms))
                sample.results.append(count)
                sample.keys.append((r, q))
        base = float(np.median(samples[BASELINE].wall_ms))
        log(
            "  p50 vs plain: "
            + ", ".join(f"{n} {np.median(s.wall_ms) / base:.2f}" for n, s in samples.items())
        )
    return samples


def table(samples: dict[str, Samples]) -> list[list[str]]:
    base = samples[BASELINE]
    base_by_key = dict(zip(base.keys, base.wall_ms, strict=True))
    base_p50 = float(np.median(base.wall_ms))
    base_cpu = float(np.mean(base.app_cpu_ms))
    base_pg = base.pg_cpu_ms / len(base.wall_ms)
    rows = []
    for name, s in samples.items():
        p50 = float(np.median(s.wall_ms))
        paired = [w - base_by_key[k] for k, w in zip(s.keys, s.wall_ms, strict=True) if k in base_by_key]
        cpu = float(np.mean(s.app_cpu_ms))
        pg = s.pg_cpu_ms / len(s.wall_ms)
        rows.append(
            [
                name,
                f"{p50:.1f}",
                f"{np.percentile(s.wall_ms, 95):.1f}",
                f"{p50 / base_p50:.2f}",
                f"{np.median(paired):+.1f}",
                f"{np.median(s.sql_ms):.1f}",
                f"{cpu:.2f}",
                f"{cpu / base_cpu:.2f}",
                f"{pg:.1f}",
                f"{pg / base_pg:.2f}" if base_pg else "-",
                f"{np.mean(s.results):.1f}",
                str(s.errors),
            ]
        )
    return rows


def explain(service: SearchService, monitor: psycopg.Connection, text: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each variant's statement for `text`, under the search's HNSW settings."""
    register_vector(monitor)
    strategy = service.strategy
    for name, fields in VARIANTS.items():
        query = service.query(DEFAULT_TENANT, body_plan(text, fields), strategy)
        with monitor.transaction():
            for key, value in hnsw_settings(strategy.effective_ef_search).items():
                monitor.execute("SELECT set_config(%s, %s, true)", (key, value))
            for _ in range(3):  # warm: the last run is the one shown
                rows = monitor.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + query.sql, query.params).fetchall()
        print(f"\n--- {name}: EXPLAIN (ANALYZE, BUFFERS) for {text!r}")
        print("\n".join(row[0] for row in rows))


if __name__ == "__main__":
    sys.exit(main())
