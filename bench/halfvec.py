"""Embeddings stored as `halfvec` (2 bytes a dimension) against `vector` (4), on the same corpus in one run.

    .venv/bin/python bench/halfvec.py [--images 20000] [--queries 200]

The same clustered 512-d unit vectors (bench/_corpus.py) go into two tables, one `vector(512)` and one
`halfvec(512)` column, each with the HNSW index the app builds (cosine, m=16, ef_construction=64). The table
prints their sizes (heap with TOAST, and index), and recall@10 of each index against exact float32 search
at several ef_search values, with the median query time. Recall is measured against the float32 truth,
so the rounding of halfvec shows in it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import clustered_vectors, relation_sizes  # noqa: E402

from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS, EmbeddedPostgres  # noqa: E402

DIM = 512
K = 10


def build(conn: psycopg.Connection, kind: str, vectors: np.ndarray) -> float:
    """Load the vectors into table t_`kind` (halfvec: from t_vector) and build its index; the build's
    seconds."""
    conn.execute(f"DROP TABLE IF EXISTS t_{kind}")
    conn.execute(f"CREATE TABLE t_{kind} (id int PRIMARY KEY, e {kind}({DIM}) NOT NULL)")
    if kind == "vector":
        with conn.cursor().copy("COPY t_vector (id, e) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, row in enumerate(vectors):
                copy.write_row((i, row))
    else:  # the same values, converted in the database as migration 0005 converts them
        conn.execute(f"INSERT INTO t_{kind} SELECT id, e::{kind}({DIM}) FROM t_vector")
    started = time.perf_counter()
    conn.execute(
        f"CREATE INDEX t_{kind}_hnsw ON t_{kind} USING hnsw (e {kind}_cosine_ops) "
        "WITH (m = 16, ef_construction = 64)"
    )
    seconds = time.perf_counter() - started
    conn.execute(f"VACUUM ANALYZE t_{kind}")
    return seconds


def sizes(conn: psycopg.Connection, kind: str) -> tuple[int, int]:
    return relation_sizes(conn, f"t_{kind}", f"t_{kind}_hnsw")


def search(
    conn: psycopg.Connection, kind: str, queries: np.ndarray, ef: int
) -> tuple[list[list[int]], float]:
    conn.execute(f"SET hnsw.ef_search = {ef}")
    found, times = [], []
    for q in queries:
        started = time.perf_counter()
        rows = conn.execute(
            f"SELECT id FROM t_{kind} ORDER BY e <=> %s::{kind}({DIM}) LIMIT {K}", (q,)
        ).fetchall()
        times.append(time.perf_counter() - started)
        found.append([r[0] for r in rows])
    return found, statistics.median(times) * 1000


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="40,100,200", help="ef_search values, comma-separated")
    parser.add_argument(
        "--sigma", type=float, default=0.08, help="spread around each cluster centre (higher: harder)"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    # bench/_corpus.py's mixture, 100 images a cluster. Its sigma 0.04 makes HNSW's work too easy to compare
    # anything (recall 1.0 at ef_search 40); 0.08 spreads each cluster (a member's cosine to its centre
    # about 0.4) so that the index misses neighbours at low ef_search.
    vectors = clustered_vectors(
        args.images, DIM, clusters=max(10, args.images // 100), sigma=args.sigma, rng=rng
    )
    # Queries from the data's own neighbourhoods: a member moved by the same spread, not a copy of it.
    picks = rng.choice(args.images, size=args.queries, replace=False)
    noisy = vectors[picks] + rng.normal(0, args.sigma, (args.queries, DIM)).astype(np.float32)
    queries = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]
    with tempfile.TemporaryDirectory(prefix="halfvec-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg", server_settings=dict(LOCAL_SERVER_SETTINGS))
        server.start()
        try:
            with psycopg.connect(server.ensure_database("halfvec"), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                register_vector(conn)
                results = {}
                for kind in ("vector", "halfvec"):
                    print(
                        f"{kind}: loading {args.images} vectors and building the index ...", file=sys.stderr
                    )
                    build_s = build(conn, kind, vectors)
                    heap, index = sizes(conn, kind)
                    per_ef = {int(ef): search(conn, kind, queries, int(ef)) for ef in args.ef.split(",")}
                    results[kind] = (build_s, heap, index, per_ef)
        finally:
            server.stop()
    base_heap, base_index = results["vector"][1], results["vector"][2]
    what = f"{args.images} clustered {DIM}-d unit vectors, {args.queries} queries"
    print(f"\n{what}, recall@{K} against exact float32\n")
    print("| storage | heap MB | index MB | heap + index vs vector | index build s |", end="")
    print("".join(f" recall@{K} ef={ef} | p50 ms ef={ef} |" for ef in args.ef.split(",")))
    print("|---|---:|---:|---:|---:|" + "---:|---:|" * len(args.ef.split(",")))
    for kind, (build_s, heap, index, per_ef) in results.items():
        ratio = (heap + index) / (base_heap + base_index)
        cells = "".join(f" {recall(found, truth):.4f} | {ms:.2f} |" for found, ms in per_ef.values())
        print(f"| {kind} | {heap / 1e6:.1f} | {index / 1e6:.1f} | {ratio:.2f}x | {build_s:.1f} |{cells}")
    print(f"\nindex alone: halfvec {results['halfvec'][2] / base_index:.2f}x of vector")
    # What the rounding alone costs, without either index's approximation: exact search over the float16
    # values (as halfvec stores them) against the float32 truth.
    half = vectors.astype(np.float16).astype(np.float32)
    exact_half = np.argsort(-(queries @ half.T), axis=1)[:, :K]
    rounding = recall([list(row) for row in exact_half], truth)
    print(f"exact search over the halfvec values: recall@{K} {rounding:.4f} against float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
