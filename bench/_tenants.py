"""A multi-tenant corpus for bench/search.py --tenants: many tenants of Zipf-like sizes in one table.

    corpus = make_tenant_corpus(1_000_000, tenants=1_000, largest=300_000)

- Tenant sizes follow size_i = largest / i^a (i = 1..tenants), with `a` chosen so that they sum to the
  corpus size: at 1,000,000 images over 1,000 tenants the largest holds 300,000 and half the tenants fewer
  than 200 (a = 1.17).
- Vectors: topics (one per 5,000 images) holding sub-topics (one per 50), shared by all tenants; each
  tenant draws its images from its own handful of sub-topics, so that every region of the space holds
  many tenants' images: a filtered index scan meets other tenants' neighbours first, as a real
  deployment's does (every tenant has beaches). An image is a common direction + its topic + its sub-topic
  + noise, so that similarity falls off in steps, as CLIP's does, rather than from one tight cluster to
  orthogonal noise, where the "true top 10" of a selective filter would be ten random far points (an
  earlier version of this corpus did that). With the default noise share 0.25, two images of one
  sub-topic have a cosine of about 0.75, of one topic 0.70, of different topics 0.50: sub-topics overlap,
  which is what makes the index miss (bench/search.py reports recall at ef_search 40 on one tenant as
  the difficulty check).
- Tags: `t50`, `t5` and `t1` on 50%, 5% and 1% of each tenant's images, drawn independently: filters of
  three selectivities. Titles are three words of a Zipf vocabulary, for the keyword branch of hybrid.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from _corpus import copy_gallery, index_recall, relation_sizes, vacuum, vocabulary
from _lookup_model import LookupModel
from _postgres import migrated_database
from _search_app import log
from pgvector.psycopg import register_vector
from psycopg import sql

from imagesearch.auth.tenant import Tenant
from imagesearch.config import load_settings
from imagesearch.db import embeddings, model_records
from imagesearch.db.pool import hnsw_settings
from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS
from imagesearch.runtime import Runtime
from imagesearch.search import sql as search_sql
from imagesearch.search.plan import plan_search
from imagesearch.search.schemas import SearchFilters, SearchMode
from imagesearch.tables import format_table

TAGS = {"t50": 0.50, "t5": 0.05, "t1": 0.01}
IMAGES_PER_CLUSTER = 50  # images per sub-topic
IMAGES_PER_TOPIC = 5_000


@dataclass(frozen=True)
class TenantCorpus:
    tenant_ids: list[uuid.UUID]
    sizes: np.ndarray  # images per tenant
    owner: np.ndarray  # (n,) the tenant index of each image
    ids: list[uuid.UUID]
    vectors: np.ndarray  # (n, dim) float32 unit rows
    tags: np.ndarray  # (n, len(TAGS)) bool, columns in TAGS order
    titles: list[str]
    vocabulary: list[str]
    sub_topic_of: np.ndarray  # (n,) each image's sub-topic
    sub_topics: np.ndarray  # (subs, dim) each sub-topic's point (common + topic + sub parts)
    noise: float  # the noise share of each image's squared norm

    def members(self, tenant: int) -> np.ndarray:
        """The image indexes of tenant number `tenant` (they are contiguous)."""
        start = int(self.sizes[:tenant].sum())
        return np.arange(start, start + int(self.sizes[tenant]))

    def tag_names(self, image: int) -> list[str]:
        return [name for name, has in zip(TAGS, self.tags[image], strict=True) if has]


def zipf_sizes(images: int, tenants: int, largest: int) -> np.ndarray:
    """Tenant sizes largest / i^a summing to `images` (a found by bisection), each at least 1."""

    def sizes(a: float) -> np.ndarray:
        return np.maximum(1, np.round(largest / np.arange(1, tenants + 1) ** a)).astype(np.int64)

    low, high = 0.01, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if sizes(mid).sum() > images:
            low = mid
        else:
            high = mid
    result = sizes(high)
    result[0] += images - int(result.sum())  # rounding: the largest tenant takes the difference
    return result


def make_tenant_corpus(
    images: int,
    *,
    tenants: int = 1_000,
    largest: int = 300_000,
    dim: int = 512,
    noise: float = 0.25,
    seed: int = 21,
    progress: Callable[[str], None] = lambda _: None,
) -> TenantCorpus:
    rng = np.random.default_rng(seed)
    sizes = zipf_sizes(images, tenants, largest)
    owner = np.repeat(np.arange(tenants), sizes)
    # Shares of each image's squared norm: a direction every image shares (CLIP's embeddings of unrelated
    # pictures have a cosine of about 0.5), its topic, its sub-topic and its own noise. Two images of one
    # sub-topic have a cosine of common + topic + sub, of one topic common + topic, else common.
    shares = {"common": 0.5, "topic": 0.2, "sub": 1.0 - 0.5 - 0.2 - noise, "noise": noise}
    topics = max(4, images // IMAGES_PER_TOPIC)
    subs = max(10, images // IMAGES_PER_CLUSTER)
    common = _unit(rng.standard_normal(dim))
    topic_dirs = _unit(rng.standard_normal((topics, dim)))
    sub_dirs = _unit(rng.standard_normal((subs, dim)))
    sub_topic = rng.integers(0, topics, size=subs)
    # Each tenant draws from its own sub-topics (about one per 50 of its images), shared with other tenants.
    picks = np.empty(images, dtype=np.int64)
    for t, size in enumerate(sizes):
        own = rng.integers(0, subs, size=max(1, int(size) // IMAGES_PER_CLUSTER))
        start = int(sizes[:t].sum())
        picks[start : start + size] = own[rng.integers(0, len(own), size=size)]
    base = (
        np.sqrt(shares["common"]) * common
        + np.sqrt(shares["topic"]) * topic_dirs[sub_topic]
        + np.sqrt(shares["sub"]) * sub_dirs
    ).astype(np.float32)
    vectors = np.empty((images, dim), dtype=np.float32)
    chunk = 100_000
    for start in range(0, images, chunk):
        end = min(images, start + chunk)
        noise_part = rng.standard_normal((end - start, dim)).astype(np.float32) * np.sqrt(
            shares["noise"] / dim
        )
        vectors[start:end] = _unit(base[picks[start:end]] + noise_part)
        progress(f"vectors {end:,}/{images:,}")
    tags = np.stack([rng.random(images) < p for p in TAGS.values()], axis=1)
    words = vocabulary(3000, rng)
    zipf = 1.0 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    title_words = rng.choice(len(words), size=(images, 3), p=zipf)
    titles = [" ".join(words[w] for w in row) for row in title_words]
    tenant_ids = [uuid.UUID(int=(0xBE << 120) | t) for t in range(tenants)]
    ids = [uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | i) for i in range(images)]
    return TenantCorpus(tenant_ids, sizes, owner, ids, vectors, tags, titles, words, picks, base, noise)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def query_vector(corpus: TenantCorpus, tenant: int, rng: np.random.Generator) -> np.ndarray:
    """A query like one of the tenant's own images: a new image of that image's sub-topic."""
    member = int(rng.choice(corpus.members(tenant)))
    dim = corpus.vectors.shape[1]
    noise = np.asarray(rng.standard_normal(dim), dtype=np.float32) * np.sqrt(corpus.noise / dim)
    return _unit(corpus.sub_topics[corpus.sub_topic_of[member]] + noise)


def exact_top(
    corpus: TenantCorpus, tenant: int, tag: str | None, query: np.ndarray, k: int
) -> list[uuid.UUID]:
    """The true top k of the tenant's images carrying `tag` (all of them for None), by cosine."""
    members = corpus.members(tenant)
    if tag is not None:
        members = members[corpus.tags[members, list(TAGS).index(tag)]]
    scores = corpus.vectors[members] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [corpus.ids[i] for i in members[order]]


def matching(corpus: TenantCorpus, tenant: int, tag: str | None) -> int:
    members = corpus.members(tenant)
    return len(members) if tag is None else int(corpus.tags[members, list(TAGS).index(tag)].sum())


def load_tenants(
    conn: psycopg.Connection,
    corpus: TenantCorpus,
    *,
    model_id: str,
    progress: Callable[[str], None] = lambda _: None,
) -> float:
    """COPY the tenants, their ready images and one vector each, with no HNSW index (bench_tenants builds it
    after the load, which is faster); seconds."""
    started = time.perf_counter()
    register_vector(conn)
    model_records.register_model(conn, model_id=model_id, dim=corpus.vectors.shape[1])
    embeddings.drop_index(conn, model_id)
    with conn.cursor() as cur, cur.copy("COPY tenants (id, name) FROM STDIN") as copy:
        for t, tenant_id in enumerate(corpus.tenant_ids):
            copy.write_row((tenant_id, f"bench-tenant-{t}"))
    rows = [
        (
            image_id,
            corpus.tenant_ids[corpus.owner[i]],
            f"o/{image_id}",
            corpus.titles[i],
            corpus.tag_names(i),
            "ready",
        )
        for i, image_id in enumerate(corpus.ids)
    ]
    columns = ["id", "tenant_id", "storage_key", "title", "tags", "status"]
    copy_gallery(conn, columns, rows, corpus.vectors, model_id=model_id, progress=progress)
    return time.perf_counter() - started


# --- recall of the app's own statement, per tenant size class and filter ---------------------------------

SIZE_CLASSES = (  # (name, smallest, largest) images of a tenant
    ("huge", 50_000, 10**9),
    ("medium", 1_000, 20_000),
    ("small", 200, 999),
    ("tiny", 1, 199),
)
FILTERS: tuple[str | None, ...] = (None, "t50", "t5", "t1")
STATEMENTS = ("vector", "hybrid, vector branch")


@dataclass
class Cell:
    """The queries of one (statement, size class, filter) cell."""

    queries: int = 0
    recall_sum: float = 0.0
    short: int = 0  # queries whose result count was not min(limit, matching images)
    index_plans: int = 0  # queries the planner answered from the HNSW index
    ms: list[float] = field(default_factory=list)

    def add(self, recall: float, complete: bool, used_index: bool, ms: float) -> None:
        self.queries += 1
        self.recall_sum += recall
        self.short += not complete
        self.index_plans += used_index
        self.ms.append(ms)

    @property
    def recall(self) -> float:
        return self.recall_sum / max(1, self.queries)


def sample_tenants(
    corpus: TenantCorpus, smallest: int, largest: int, count: int, rng: np.random.Generator
) -> list[int]:
    """Up to `count` tenants whose size is in [smallest, largest]."""
    eligible = np.flatnonzero((corpus.sizes >= smallest) & (corpus.sizes <= largest))
    if len(eligible) <= count:
        return [int(t) for t in eligible]
    return sorted(int(t) for t in rng.choice(eligible, size=count, replace=False))


@dataclass(frozen=True)
class Probe:
    """One query of the grid: a tenant, a query vector near its images, a two-word text and a filter."""

    tenant: int
    vector: np.ndarray
    text: str
    tag: str | None


class AppStatements:
    """The app's own statements and settings (SearchService, one round trip each), for the bench."""

    def __init__(self, url: str, dim: int, model_id: str, overrides: dict[str, str] | None = None) -> None:
        self.model_id = model_id
        self.runtime = Runtime(
            load_settings(database_url=url, storage_url="file:///tmp/unused"),
            configured_model=LookupModel(model_id, [], np.zeros((0, dim), dtype=np.float32)),
        )
        self.service = self.runtime.search
        self.strategy = self.service.strategy
        self.settings = {**hnsw_settings(self.strategy.effective_ef_search), **(overrides or {})}

    def run(
        self, corpus: TenantCorpus, probe: Probe, statement: str
    ) -> tuple[list[uuid.UUID], int, bool, float]:
        """The statement's top 10, the count a user gets, whether the plan read the HNSW index, and ms."""
        tenant = Tenant(id=corpus.tenant_ids[probe.tenant], name=f"bench-tenant-{probe.tenant}")
        mode: SearchMode = "vector" if statement == "vector" else "hybrid"
        filters = SearchFilters(tags=[probe.tag]) if probe.tag else None
        plan = plan_search(
            query=probe.text, image_id=None, mode=mode, limit=10, filters=filters, query_vector=probe.vector
        )
        query = self.service.query(tenant, plan, self.strategy)
        sql_text: bytes | sql.Composed = query.sql
        if mode == "hybrid":  # the branch alone: the same CTEs the app composes for this plan
            shape = search_sql.QueryShape(
                vector=True,
                keyword=True,
                filters=plan.filters.predicates(),
                loose_keywords=plan.loose_keywords,
            )
            branch = search_sql._vector_branch(self.service.model_for(self.strategy), shape)
            sql_text = sql.SQL("WITH {} SELECT image_id FROM vec ORDER BY rank, image_id LIMIT 11").format(
                branch
            )
        started = time.perf_counter()
        rows = self.service.db.read(sql_text, query.params, settings=self.settings)
        ms = (time.perf_counter() - started) * 1000
        found = [row[0] for row in rows][:10]
        # What a user gets: the whole statement's page (for hybrid, fused with the keyword branch).
        count = len(found) if mode == "vector" else len(self.service.run(tenant, plan, self.strategy)[:10])
        explained = self.service.db.read(
            b"EXPLAIN (FORMAT JSON) " + sql_bytes(sql_text), query.params, settings=self.settings
        )
        return found, count, embeddings.index_name(self.model_id) in str(explained), ms

    def close(self) -> None:
        self.runtime.close()


def sql_bytes(statement: bytes | sql.Composed) -> bytes:
    return statement if isinstance(statement, bytes) else statement.as_bytes(None)


def tenant_grid(
    url: str,
    corpus: TenantCorpus,
    *,
    sample: int,
    class_queries: int,
    model_id: str,
    overrides: dict[str, str] | None = None,
) -> dict[tuple[str, str, str | None], Cell]:
    """Every sampled tenant's queries under every filter, in vector mode and as hybrid's vector branch."""
    rng = np.random.default_rng(9)
    app = AppStatements(url, corpus.vectors.shape[1], model_id, overrides)
    cells = {
        (statement, name, tag): Cell()
        for statement in STATEMENTS
        for name, _, _ in SIZE_CLASSES
        for tag in FILTERS
    }
    try:
        for name, smallest, largest in SIZE_CLASSES:
            tenants = sample_tenants(corpus, smallest, largest, sample, rng)
            per_tenant = max(1, class_queries // max(1, len(tenants)))
            for t in tenants:
                for _ in range(per_tenant):
                    vector = query_vector(corpus, t, rng)
                    text = " ".join(rng.choice(corpus.vocabulary[20:300], size=2, replace=False))
                    for tag in FILTERS:
                        probe = Probe(t, vector, text, tag)
                        truth = exact_top(corpus, t, tag, vector, 10)
                        wanted = min(10, matching(corpus, t, tag))
                        for statement in STATEMENTS:
                            found, count, used_index, ms = app.run(corpus, probe, statement)
                            recall = len(set(found) & set(truth)) / wanted if wanted else 1.0
                            cells[(statement, name, tag)].add(recall, count == wanted, used_index, ms)
            log(f"tenants: {name} done ({len(tenants)} tenants, {per_tenant} queries each)")
    finally:
        app.close()
    return {key: cell for key, cell in cells.items() if cell.queries}


def single_tenant_recall(url: str, corpus: TenantCorpus, ef_search: int, model_id: str) -> float:
    """The difficulty check: a bare ORDER BY ... LIMIT 10 over the largest tenant, at `ef_search`."""
    rng = np.random.default_rng(5)
    queries = [query_vector(corpus, 0, rng) for _ in range(100)]
    return index_recall(
        url,
        model_id=model_id,
        tenant_id=corpus.tenant_ids[0],
        queries=queries,
        truths=[set(exact_top(corpus, 0, None, q, 10)) for q in queries],
        ef_search=ef_search,
    )


# --- storage: vector, halfvec and binary quantization side by side ----------------------------------------

BQ_INDEX = "embeddings_bq_bench"


def build_alternatives(conn: psycopg.Connection, model_id: str, dim: int, facts: dict[str, Any]) -> None:
    """The same vectors as `vector(dim)` (a table of the embeddings' columns, with the app's HNSW
    parameters) and a binary-quantized HNSW index on the halfvec column; sizes and build seconds into
    `facts` (once: a kept database has them)."""
    conn.autocommit = True
    if "vector_index_s" not in facts:
        log("sizing: copying the vectors as vector(dim) and building its index")
        conn.execute("DROP TABLE IF EXISTS sizing_vector")
        conn.execute(
            f"CREATE TABLE sizing_vector AS SELECT image_id, model_id, tenant_id, embedding::vector({dim}) "
            f"AS embedding, created_at FROM embeddings WHERE model_id = '{model_id}'"
        )
        started = time.perf_counter()
        conn.execute(
            "CREATE INDEX sizing_vector_hnsw ON sizing_vector USING hnsw (embedding vector_cosine_ops) "
            f"WITH (m = {embeddings.HNSW_M}, ef_construction = {embeddings.HNSW_EF_CONSTRUCTION})"
        )
        facts["vector_index_s"] = time.perf_counter() - started
        facts["vector_heap"], facts["vector_index"] = relation_sizes(
            conn, "sizing_vector", "sizing_vector_hnsw"
        )
    if "bq_index_s" not in facts:
        log("sizing: building the binary-quantized index")
        started = time.perf_counter()
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {BQ_INDEX} ON embeddings USING hnsw "
            f"((binary_quantize(embedding::halfvec({dim}))::bit({dim})) bit_hamming_ops) "
            f"WITH (m = {embeddings.HNSW_M}, ef_construction = {embeddings.HNSW_EF_CONSTRUCTION}) "
            f"WHERE model_id = '{model_id}'"
        )
        facts["bq_index_s"] = time.perf_counter() - started
        facts["bq_index"] = relation_sizes(conn, BQ_INDEX, BQ_INDEX)[1]
    conn.autocommit = False


def binary_rows(url: str, corpus: TenantCorpus, *, model_id: str, queries: int = 100) -> list[list[str]]:
    """Recall@10 and latency on the largest tenants: the app's HNSW (halfvec, ef_search 200) against the
    binary-quantized index (Hamming distance, ef_search = candidates) re-ranked by cosine over its
    candidates."""
    rng = np.random.default_rng(17)
    dim = corpus.vectors.shape[1]
    probes = [(t, query_vector(corpus, t, rng)) for t in range(3) for _ in range(queries // 3)]
    truths = [exact_top(corpus, t, None, v, 10) for t, v in probes]
    plain = (
        f"SELECT image_id FROM embeddings WHERE model_id = '{model_id}' AND tenant_id = %(tenant)s "
        f"ORDER BY embedding::halfvec({dim}) <=> %(q)s::halfvec({dim}) LIMIT 10"
    )
    rerank = (
        f"WITH c AS MATERIALIZED (SELECT image_id, embedding::halfvec({dim}) AS v FROM embeddings "
        f"WHERE model_id = '{model_id}' AND tenant_id = %(tenant)s "
        f"ORDER BY binary_quantize(embedding::halfvec({dim}))::bit({dim}) "
        f"<~> binary_quantize(%(q)s::halfvec({dim})) "
        f"LIMIT %(candidates)s) SELECT image_id FROM c ORDER BY v <=> %(q)s::halfvec({dim}) LIMIT 10"
    )
    rows = []
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        for name, statement, candidates in (
            ("HNSW halfvec (the app), ef_search 200", plain, 200),
            ("binary HNSW + cosine re-rank of 200", rerank, 200),
            ("binary HNSW + cosine re-rank of 400", rerank, 400),
            ("binary HNSW + cosine re-rank of 800", rerank, 800),
        ):
            conn.execute(f"SET hnsw.ef_search = {min(1000, max(200, candidates))}")
            hits, times = 0, []
            for (t, vector), truth in zip(probes, truths, strict=True):
                params = {"tenant": corpus.tenant_ids[t], "q": vector, "candidates": candidates}
                started = time.perf_counter()
                found = [r[0] for r in conn.execute(statement, params).fetchall()]
                times.append((time.perf_counter() - started) * 1000)
                hits += len(set(found) & set(truth))
            rows.append(
                [
                    name,
                    f"{hits / (10 * len(probes)):.3f}",
                    f"{np.percentile(times, 50):.1f}",
                    f"{np.percentile(times, 95):.1f}",
                ]
            )
            log(f"binary: {rows[-1]}")
    return rows


# --- the bench: bench/search.py --tenants N ---------------------------------------------------------------


def bench_tenants(args: argparse.Namespace, *, model_id: str) -> None:
    """Load (or reuse, with --keep DIR) the multi-tenant corpus, then print the recall grid of the app's
    statement and, with --sizing, the vector/halfvec/binary sizes and the binary-quantization rows."""
    images = args.tenants
    log(f"tenants: generating {images:,} images over {args.tenant_count} tenants")
    corpus = make_tenant_corpus(
        images, tenants=args.tenant_count, largest=int(images * 0.3), noise=args.noise, progress=log
    )
    server_settings = {
        **LOCAL_SERVER_SETTINGS,
        "shared_buffers": args.shared_buffers,
        "maintenance_work_mem": args.maintenance_work_mem,
    }
    with ExitStack() as stack:
        directory = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenants-")))
        url = stack.enter_context(migrated_database(Path(directory), "bench", server_settings))
        facts_file = Path(directory) / "facts.json"
        facts: dict[str, Any] = json.loads(facts_file.read_text()) if facts_file.exists() else {}
        if facts.get("images") != images or facts.get("noise") != args.noise:
            facts = {"images": images, "noise": args.noise, **server_settings}
            with psycopg.connect(url) as conn:
                facts["copy_s"] = load_tenants(conn, corpus, model_id=model_id, progress=log)
                log(f"tenants: loaded in {facts['copy_s']:.0f} s; building the HNSW index")
                started = time.perf_counter()
                embeddings.create_index(conn, model_id, corpus.vectors.shape[1])
                conn.commit()
                facts["index_s"] = time.perf_counter() - started
                vacuum(conn)
                facts["heap"], facts["index"] = relation_sizes(
                    conn, "embeddings", embeddings.index_name(model_id)
                )
            facts_file.write_text(json.dumps(facts))
        log(f"tenants: index built in {facts['index_s']:.0f} s")
        difficulty = {ef: single_tenant_recall(url, corpus, ef, model_id) for ef in (40, 200)}
        cells = tenant_grid(
            url,
            corpus,
            sample=args.tenant_sample,
            class_queries=args.class_queries,
            model_id=model_id,
            overrides=dict(item.split("=", 1) for item in args.setting),
        )
        binary = None
        if args.sizing:
            with psycopg.connect(url) as conn:
                register_vector(conn)
                build_alternatives(conn, model_id, corpus.vectors.shape[1], facts)
            facts_file.write_text(json.dumps(facts))
            binary = binary_rows(url, corpus, model_id=model_id)
    print_tenants(corpus, args, facts, difficulty, cells, binary)


def print_tenants(
    corpus: TenantCorpus,
    args: argparse.Namespace,
    facts: dict[str, Any],
    difficulty: dict[int, float],
    cells: dict[tuple[str, str, str | None], Cell],
    binary: list[list[str]] | None,
) -> None:
    print(
        f"\n{len(corpus.ids):,} images, {len(corpus.sizes)} tenants (largest {corpus.sizes[0]:,}, median "
        f"{int(np.median(corpus.sizes))}), noise {args.noise}: copy {facts['copy_s']:.0f} s, HNSW build "
        f"{facts['index_s']:.0f} s (maintenance_work_mem {facts['maintenance_work_mem']}, "
        f"{facts['max_parallel_maintenance_workers']} parallel workers)"
    )
    print(
        f"difficulty: a bare ORDER BY ... LIMIT 10 on the largest tenant finds {difficulty[40]:.3f} of the "
        f"true top 10 at ef_search 40, {difficulty[200]:.3f} at 200\n"
    )
    rows = [
        [
            statement,
            size_class,
            tag or "none",
            str(cell.queries),
            f"{cell.recall:.3f}",
            str(cell.short),
            f"{cell.index_plans}/{cell.queries}",
            f"{np.percentile(cell.ms, 50):.1f}",
            f"{np.percentile(cell.ms, 95):.1f}",
        ]
        for (statement, size_class, tag), cell in cells.items()
    ]
    headers = [
        "statement",
        "tenants",
        "filter",
        "queries",
        "recall@10",
        "short",
        "HNSW plans",
        "p50 ms",
        "p95 ms",
    ]
    print(format_table(headers, rows))
    if binary is None:
        return
    per_million = 1e6 / len(corpus.ids)
    sizes = [
        ["vector", facts["vector_heap"], facts["vector_index"], facts["vector_index_s"]],
        ["halfvec (the app)", facts["heap"], facts["index"], facts["index_s"]],
        ["binary index on halfvec", facts["heap"], facts["bq_index"], facts["bq_index_s"]],
    ]
    base = facts["vector_heap"] + facts["vector_index"]
    print()
    print(
        format_table(
            ["storage", "table MB/M", "index MB/M", "table + index vs vector", "index build s/M"],
            [
                [
                    name,
                    f"{heap * per_million / 1e6:.0f}",
                    f"{index * per_million / 1e6:.0f}",
                    f"{(heap + index) / base:.2f}",
                    f"{seconds * per_million:.0f}",
                ]
                for name, heap, index, seconds in sizes
            ],
        )
    )
    print()
    print(format_table(["largest 3 tenants, no filter", "recall@10", "p50 ms", "p95 ms"], binary))
