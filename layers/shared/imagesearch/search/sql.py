"""The search SQL: one statement per query, composed from fixed pieces (never from user input).

Vector branch: the model's partial HNSW index (`embedding::vector(dim) <=> q`, `model_id = '<literal>'`, so
the planner can match the index), candidates taken in a MATERIALIZED CTE (with `hnsw.iterative_scan =
relaxed_order` the index may return rows slightly out of order) and re-ranked there with an id tiebreaker.
Keyword branch: `websearch_to_tsquery` on the weighted tsvector, or a trigram word match on the filename
for partial words. Both branches apply the tenant and the filters. Reciprocal rank fusion joins them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from psycopg import sql

from imagesearch.db.models import ModelRecord, vector_expression

TEXT_CONFIG = "english"

# Filters on images `i`, pushed into both branches; each piece only when the filter is set, so the planner
# sees plain predicates.
_TAGS_ANY = sql.SQL(" AND i.tags && %(tags)s::text[]")
_TAGS_ALL = sql.SQL(" AND i.tags @> %(tags)s::text[]")
_AFTER = sql.SQL(" AND i.created_at >= %(created_after)s")
_BEFORE = sql.SQL(" AND i.created_at < %(created_before)s")
_EXCLUDE = sql.SQL(" AND i.id <> %(exclude)s")


@dataclass(frozen=True)
class QueryShape:
    """What varies the statement's text (and so its prepared plan)."""

    vector: bool
    keyword: bool
    stored_vector: bool = False  # the query vector is an image's stored vector, not a parameter
    tags: str | None = None  # None, "any" or "all"
    created_after: bool = False
    created_before: bool = False
    exclude: bool = False  # leave the query image itself out (similar images)
    loose_keywords: bool = False  # also rank images matching some of the words (plain queries only)


def _filters(shape: QueryShape) -> sql.Composable:
    parts: list[sql.Composable] = []
    if shape.tags == "any":
        parts.append(_TAGS_ANY)
    elif shape.tags == "all":
        parts.append(_TAGS_ALL)
    if shape.created_after:
        parts.append(_AFTER)
    if shape.created_before:
        parts.append(_BEFORE)
    if shape.exclude:
        parts.append(_EXCLUDE)
    return sql.Composed(parts)


def _has_image_filters(shape: QueryShape) -> bool:
    return bool(shape.tags or shape.created_after or shape.created_before or shape.exclude)


def _query_vector(model: ModelRecord, shape: QueryShape) -> sql.Composable:
    if shape.stored_vector:
        return sql.SQL(
            "(SELECT {expr} FROM embeddings WHERE image_id = %(query_image)s AND model_id = {model} "
            "AND tenant_id = %(tenant)s)"
        ).format(expr=vector_expression(model), model=sql.Literal(model.id))
    return sql.SQL("%(query_vector)s::vector({dim})").format(dim=sql.Literal(model.dim))


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
        expr=sql.SQL("e.") + vector_expression(model),
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


def search_statement(model: ModelRecord, shape: QueryShape, *, paged: bool) -> bytes:
    """The whole search: branches, fusion, min_score, keyset cursor, page size (one extra row).

    Composed once per (model, shape, paging) and kept as bytes: composing and quoting it per query cost
    more than a third of a millisecond.
    """
    return _statement_bytes(model.id, model.dim, shape, paged)


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
