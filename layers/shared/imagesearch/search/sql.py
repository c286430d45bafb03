"""The search SQL: one statement per query, composed from fixed pieces (never from user input).

Vector branch: the model's partial HNSW index (`embedding::halfvec(dim) <=> q`, `model_id = '<literal>'`, so
the planner can match the index), candidates taken in a MATERIALIZED CTE (with `hnsw.iterative_scan =
relaxed_order` the index may return rows slightly out of order) and re-ranked there with an id tiebreaker.
Keyword branch: `websearch_to_tsquery` on the weighted tsvector, or a trigram word match on the filename
for partial words. Both branches apply the tenant and the filters. Reciprocal rank fusion joins them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

import numpy as np
from psycopg import sql

from imagesearch.config import SearchStrategy
from imagesearch.db import embeddings
from imagesearch.db.model_records import ModelRecord
from imagesearch.search.plan import SearchPlan

TEXT_CONFIG = "english"

# The predicate of each filter of SearchFilters (search/schemas.py), by the name `predicates()` gives it, on
# images `i`; pushed into both branches, each only when its filter is set, so the planner sees plain
# predicates.
FILTER_PREDICATES: dict[str, sql.SQL] = {
    "tags_any": sql.SQL(" AND i.tags && %(tags)s::text[]"),
    "tags_all": sql.SQL(" AND i.tags @> %(tags)s::text[]"),
    "created_after": sql.SQL(" AND i.created_at >= %(created_after)s"),
    "created_before": sql.SQL(" AND i.created_at < %(created_before)s"),
}
_EXCLUDE = sql.SQL(" AND i.id <> %(exclude)s")


@dataclass(frozen=True)
class QueryShape:
    """What varies the statement's text (and so its prepared plan)."""

    vector: bool
    keyword: bool
    stored_vector: bool = False  # the query vector is an image's stored vector, not a parameter
    filters: tuple[str, ...] = ()  # names of FILTER_PREDICATES
    exclude: bool = False  # leave the query image itself out (similar images)
    loose_keywords: bool = False  # also rank images matching some of the words (plain queries only)


@dataclass(frozen=True)
class SearchQuery:
    """A statement ready to run: its SQL, its parameters, and whether it reads the HNSW index."""

    sql: bytes
    params: dict[str, Any]
    uses_vector_index: bool


def search_query(
    tenant_id: UUID,
    model: ModelRecord,
    plan: SearchPlan,
    strategy: SearchStrategy,
    *,
    query_vector: np.ndarray | None,
) -> SearchQuery:
    """The statement and parameters of `plan` under `strategy`: limit + 1 rows (the extra one says "there
    is more"). `query_vector` is the text's or picture's embedding; None when the plan searches by a stored
    image's vector or by keywords alone."""
    stored = plan.uses_stored_vector
    if plan.uses_vectors and not stored and query_vector is None:
        raise ValueError("a vector search needs its query vector")
    shape = QueryShape(
        vector=plan.uses_vectors,
        keyword=plan.uses_keywords,
        stored_vector=stored,
        filters=plan.filters.predicates(),
        exclude=plan.exclude_query_image,
        loose_keywords=plan.loose_keywords,
    )
    params: dict[str, Any] = {
        **plan.filters.parameters(),
        "tenant": tenant_id,
        "text": plan.text,
        "query_image": plan.query_image,
        "exclude": plan.query_image,
        "vector_candidates": strategy.candidates,
        "keyword_candidates": strategy.candidates,
        "weight_vector": strategy.weight_vector,
        "weight_keyword": strategy.weight_keyword,
        "rrf_k": strategy.rrf_k,
        "min_score": plan.min_score if plan.min_score is not None else -2.0,
        "after_score": plan.after[0] if plan.after else None,
        "after_id": plan.after[1] if plan.after else None,
        "offset": plan.offset,
        "limit": plan.limit + 1,
    }
    if plan.uses_vectors and not stored:
        params["query_vector"] = np.asarray(query_vector, dtype=np.float32)
    statement = _statement_bytes(model.id, model.dim, shape, plan.after is not None)
    return SearchQuery(statement, params, uses_vector_index=plan.uses_vectors)


def _filters(shape: QueryShape) -> sql.Composable:
    parts = [FILTER_PREDICATES[name] for name in shape.filters]
    if shape.exclude:
        parts.append(_EXCLUDE)
    return sql.Composed(parts)


def _has_image_filters(shape: QueryShape) -> bool:
    return bool(shape.filters or shape.exclude)


def _query_vector(model: ModelRecord, shape: QueryShape) -> sql.Composable:
    if shape.stored_vector:
        return embeddings.stored_vector(model.id, model.dim)
    return sql.SQL("%(query_vector)s::halfvec({dim})").format(dim=sql.Literal(model.dim))


def _vector_branch(model: ModelRecord, shape: QueryShape) -> sql.Composable:
    join = sql.SQL(" JOIN images i ON i.id = e.image_id") if _has_image_filters(shape) else sql.SQL("")
    return sql.SQL(
        """
        qv AS (SELECT {query_vector} AS v),
        vec_candidates AS MATERIALIZED (
            SELECT e.image_id, {expr} <=> (SELECT v FROM qv) AS distance
            FROM embeddings e{join}
            WHERE e.model_id = {model} AND e.tenant_id = %(tenant)s{filters}
            ORDER BY {expr} <=> (SELECT v FROM qv)
            LIMIT %(vector_candidates)s
        ),
        vec AS (
            SELECT image_id, distance, rank() OVER (ORDER BY distance) AS rank
            FROM vec_candidates
        )"""
    ).format(
        query_vector=_query_vector(model, shape),
        expr=sql.SQL("e.") + embeddings.vector_expression(model.dim),
        join=join,
        model=sql.Literal(model.id),
        filters=_filters(shape),
    )


# The query's words as an OR query ("blue | triangl | lisbon"), for images that match only some of them.
_LOOSE = sql.SQL(
    """
        kq AS MATERIALIZED (
            SELECT (SELECT coalesce(string_agg(quote_literal(word), ' | '), '')::tsquery
                    FROM unnest(tsvector_to_array(to_tsvector({config}, %(text)s))) AS word) AS loose
        ),"""
)
_LOOSE_HITS = sql.SQL(
    """
            UNION ALL
            SELECT i.id, 0.5 * ts_rank_cd(i.search_tsv, (SELECT loose FROM kq), 32)
            FROM images i
            WHERE i.tenant_id = %(tenant)s AND i.status = 'ready'
              AND i.search_tsv @@ (SELECT loose FROM kq){filters}"""
)


# Equal scores share a rank (rank(), not row_number()): ties broken by id would hand out arbitrary RRF
# differences. No SQL comments in the statements: pgbench scripts put them on one line.
def _keyword_branch(shape: QueryShape) -> sql.Composable:
    """Every word matched (websearch syntax: "phrases", or, -not) scores in [0.5, 1); with loose_keywords,
    images matching only some words follow in [0, 0.5). Partial matches matter for fusion: for "a blue
    triangle in Lisbon" the Lisbon pictures nobody described are found by the vector branch, and ranked up
    by their title's keyword. Index-friendly halves (GIN on the tsvector, trigram GIN on the filename)
    joined by UNION ALL: one WHERE with OR made the planner scan the whole table."""
    config = sql.Literal(TEXT_CONFIG)
    loose = _LOOSE.format(config=config) if shape.loose_keywords else sql.SQL("")
    loose_hits = _LOOSE_HITS.format(filters=_filters(shape)) if shape.loose_keywords else sql.SQL("")
    return sql.SQL(
        """{loose}
        kw_hits AS (
            SELECT i.id AS image_id,
                   0.5 + 0.5 * ts_rank_cd(i.search_tsv, websearch_to_tsquery({config}, %(text)s), 32)::float8
                   AS score
            FROM images i
            WHERE i.tenant_id = %(tenant)s AND i.status = 'ready'
              AND i.search_tsv @@ websearch_to_tsquery({config}, %(text)s){filters}{loose_hits}
            UNION ALL
            SELECT i.id, 0.5 * word_similarity(%(text)s, i.filename)
            FROM images i
            WHERE i.tenant_id = %(tenant)s AND i.status = 'ready' AND i.filename %%> %(text)s{filters}
        ),
        kw_candidates AS (
            SELECT image_id, max(score) AS score FROM kw_hits
            GROUP BY image_id
            ORDER BY score DESC, image_id
            LIMIT %(keyword_candidates)s
        ),
        kw AS (
            SELECT image_id, score, rank() OVER (ORDER BY score DESC) AS rank
            FROM kw_candidates
        )"""
    ).format(config=config, filters=_filters(shape), loose=loose, loose_hits=loose_hits)


def _fusion(shape: QueryShape) -> sql.Composable:
    """The scored result set `fused(id, score, vector_rank, vector_distance, keyword_rank, keyword_score)`."""
    if shape.vector and shape.keyword:
        # RRF, normalised so that first place in both lists scores 1.0.
        return sql.SQL(
            """
            fused AS (
                SELECT coalesce(v.image_id, k.image_id) AS id,
                       (coalesce(%(weight_vector)s::float8 / (%(rrf_k)s + v.rank), 0)
                        + coalesce(%(weight_keyword)s::float8 / (%(rrf_k)s + k.rank), 0))
                       / ((%(weight_vector)s::float8 + %(weight_keyword)s::float8)
                          / (%(rrf_k)s + 1)) AS score,
                       v.rank AS vector_rank, v.distance AS vector_distance,
                       k.rank AS keyword_rank, k.score AS keyword_score
                FROM vec v FULL JOIN kw k ON v.image_id = k.image_id
            )"""
        )
    if shape.vector:
        # Cosine similarity: an absolute score, comparable across queries.
        return sql.SQL(
            """
            fused AS (
                SELECT image_id AS id, 1 - distance AS score, rank AS vector_rank,
                       distance AS vector_distance, NULL::bigint AS keyword_rank,
                       NULL::float8 AS keyword_score
                FROM vec
            )"""
        )
    return sql.SQL(
        """
        fused AS (
            SELECT image_id AS id, score::float8 AS score, NULL::bigint AS vector_rank,
                   NULL::float8 AS vector_distance, rank AS keyword_rank, score::float8 AS keyword_score
            FROM kw
        )"""
    )


# Composed once per (model, shape, paging) and kept as bytes: composing and quoting it per query costs more
# than the statement's planning (docs/search.md).
@lru_cache(maxsize=256)
def _statement_bytes(model_id: str, dim: int, shape: QueryShape, paged: bool) -> bytes:
    return _compose(
        ModelRecord(id=model_id, dim=dim, state="", bundle_uri=None), shape, paged=paged
    ).as_bytes(None)


def _compose(model: ModelRecord, shape: QueryShape, *, paged: bool) -> sql.Composed:
    ctes: list[sql.Composable] = []
    if shape.vector:
        ctes.append(_vector_branch(model, shape))
    if shape.keyword:
        ctes.append(_keyword_branch(shape))
    ctes.append(_fusion(shape))
    cursor = (
        sql.SQL(" AND (f.score < %(after_score)s OR (f.score = %(after_score)s AND f.id > %(after_id)s))")
        if paged
        else sql.SQL("")
    )
    # Rank, cut and page the fused ids first; only the page's rows are joined with images.
    return sql.SQL(
        """
        WITH {ctes}
        SELECT f.id, f.score, f.vector_rank, f.vector_distance, f.keyword_rank, f.keyword_score,
               i.tenant_id, i.storage_key, i.title, i.tags, i.filename
        FROM (
            SELECT * FROM fused f
            WHERE f.score >= %(min_score)s{cursor}
            ORDER BY f.score DESC, f.id
            OFFSET %(offset)s
            LIMIT %(limit)s
        ) f
        JOIN images i ON i.id = f.id
        ORDER BY f.score DESC, f.id
        """
    ).format(ctes=sql.SQL(",").join(ctes), cursor=cursor)
