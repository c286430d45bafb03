"""Synthetic search corpora for the benchmarks: clustered unit vectors and captions, loaded with COPY.

Uniform random vectors are HNSW's worst case and unlike real embeddings, so vectors come from a Gaussian
mixture: `clusters` random unit centres, each member = normalise(centre + N(0, sigma^2 I)). With sigma =
0.04 in 512 dimensions a member's cosine to its centre is about 0.74 and to another cluster's members about
0.55, close to what CLIP image embeddings of one topic show. Captions are drawn from a Zipf-distributed
vocabulary of made-up words, so the keyword branch sees common and rare terms.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg import sql

from imagesearch.config import DEFAULT_TENANT_ID
from imagesearch.db import embeddings, model_records

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tu",
    "vos",
    "shi",
    "dar",
    "pel",
    "qua",
    "zen",
    "bri",
    "mo",
    "tal",
    "nix",
]


@dataclass(frozen=True)
class Corpus:
    ids: list[uuid.UUID]
    vectors: np.ndarray  # (n, dim) float32, unit rows
    titles: list[str]
    tags: list[list[str]]
    vocabulary: list[str]


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))))
    return sorted(words)


def clustered_vectors(
    n: int, dim: int, *, clusters: int, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    members = centres[rng.integers(0, clusters, size=n)] + rng.normal(0, sigma, (n, dim)).astype(np.float32)
    members /= np.linalg.norm(members, axis=1, keepdims=True)
    return members


def make_corpus(n: int, dim: int = 512, *, seed: int = 7, clusters: int | None = None) -> Corpus:
    rng = np.random.default_rng(seed)
    words = vocabulary(3000, rng)
    zipf = 1.0 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    vectors = clustered_vectors(n, dim, clusters=clusters or max(10, n // 100), sigma=0.04, rng=rng)
    titles = [" ".join(rng.choice(words, size=int(rng.integers(3, 7)), p=zipf)) for _ in range(n)]
    tags = [sorted(set(rng.choice(words, size=int(rng.integers(1, 4)), p=zipf))) for _ in range(n)]
    ids = [uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i) for i in range(n)]
    return Corpus(ids=ids, vectors=vectors, titles=titles, tags=[list(t) for t in tags], vocabulary=words)


def query_vectors(corpus: Corpus, count: int, *, seed: int = 11) -> np.ndarray:
    """Queries near the data (perturbed corpus members), not in it."""
    rng = np.random.default_rng(seed)
    picks = corpus.vectors[rng.integers(0, len(corpus.ids), size=count)]
    queries = picks + rng.normal(0, 0.04, picks.shape).astype(np.float32)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def query_texts(corpus: Corpus, count: int, *, seed: int = 13) -> list[str]:
    """Two-word queries of moderately common words (hundreds of keyword matches at 100,000)."""
    rng = np.random.default_rng(seed)
    common = corpus.vocabulary[20:300]
    return [" ".join(rng.choice(common, size=2, replace=False)) for _ in range(count)]


def load(
    conn: psycopg.Connection,
    corpus: Corpus,
    *,
    model_id: str,
    created_at: Sequence[datetime] | None = None,
) -> dict[str, float]:
    """COPY the corpus in as one tenant's ready images, then build the model's HNSW index; timings.
    `created_at`: each image's upload time (default: now, the column's default)."""
    timings: dict[str, float] = {}
    dim = corpus.vectors.shape[1]
    model_records.register_model(conn, model_id=model_id, dim=dim)
    embeddings.drop_index(conn, model_id)
    conn.commit()

    started = time.perf_counter()
    columns = ["id", "tenant_id", "storage_key", "title", "tags", "status"]
    rows = list(_image_rows(corpus))
    if created_at is not None:
        columns.append("created_at")
        rows = [(*row, when) for row, when in zip(rows, created_at, strict=True)]
    copy_gallery(
        conn,
        columns,
        rows,
        corpus.vectors,
        model_id=model_id,
    )
    timings["copy_s"] = time.perf_counter() - started

    started = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    embeddings.create_index(conn, model_id, dim)
    conn.commit()
    vacuum(conn)
    timings["index_s"] = time.perf_counter() - started
    return timings


def copy_gallery(
    conn: psycopg.Connection,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    vectors: np.ndarray,
    *,
    model_id: str,
    progress: Callable[[str], None] | None = None,
) -> None:
    """COPY image rows (the first column is the id; `tenant_id` among the columns) and one vector each into
    images and embeddings. `progress` hears of every 200,000 rows."""
    register_vector(conn)  # the binary halfvec dumper
    tenant = list(columns).index("tenant_id")
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY images ({}) FROM STDIN").format(names)) as copy:
        for i, row in enumerate(rows):
            copy.write_row(row)
            _report(progress, "images", i, len(rows))
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY embeddings (image_id, model_id, tenant_id, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["uuid", "text", "uuid", "halfvec"])  # the column's own type (migration 0005)
        for i, (row, vector) in enumerate(zip(rows, vectors, strict=True)):
            tenant_id = row[tenant]  # a UUID, or its text (the images COPY takes either; binary does not)
            if not isinstance(tenant_id, uuid.UUID):
                tenant_id = uuid.UUID(str(tenant_id))
            copy.write_row([row[0], model_id, tenant_id, HalfVector(vector)])
            _report(progress, "embeddings", i, len(rows))
    conn.commit()


def _report(progress: Callable[[str], None] | None, what: str, i: int, total: int) -> None:
    if progress is not None and i % 200_000 == 199_999:
        progress(f"{what} {i + 1:,}/{total:,}")


def relation_sizes(conn: psycopg.Connection, table: str, index: str) -> tuple[int, int]:
    """The bytes of `table` (with its TOAST) and of `index`."""
    row = conn.execute(
        "SELECT pg_table_size(%s::regclass), pg_relation_size(%s::regclass)", (table, index)
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def index_recall(
    url: str,
    *,
    model_id: str,
    tenant_id: uuid.UUID,
    queries: Sequence[np.ndarray],
    truths: Sequence[set[uuid.UUID]],
    ef_search: int,
) -> float:
    """Mean recall@10 of a bare `ORDER BY distance LIMIT 10` over one tenant's rows of the model's HNSW
    index (iterative scan on), against each query's true top 10."""
    dim = len(queries[0])
    hits = 0
    with psycopg.connect(url) as conn:
        register_vector(conn)
        conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef_search),))
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        for query, truth in zip(queries, truths, strict=True):
            rows = conn.execute(
                f"SELECT image_id FROM embeddings WHERE model_id = '{model_id}' AND tenant_id = %s "
                f"ORDER BY embedding::halfvec({dim}) <=> %s::halfvec({dim}) LIMIT 10",
                (tenant_id, query),
            ).fetchall()
            hits += len({row[0] for row in rows} & truth)
    return hits / (10 * len(queries))


def vacuum(conn: psycopg.Connection) -> None:
    """VACUUM ANALYZE after a bulk load, so the planner knows the tables; then a CHECKPOINT, so the load's
    dirty pages are not written out by a background checkpoint in the middle of a measurement."""
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE images")
    conn.execute("VACUUM ANALYZE embeddings")
    conn.execute("CHECKPOINT")
    conn.autocommit = False


def _image_rows(corpus: Corpus) -> Iterator[tuple[object, ...]]:
    for image_id, title, tags in zip(corpus.ids, corpus.titles, corpus.tags, strict=True):
        yield (image_id, DEFAULT_TENANT_ID, f"originals/{DEFAULT_TENANT_ID}/{image_id}", title, tags, "ready")
