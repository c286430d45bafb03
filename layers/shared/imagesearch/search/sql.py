"""The search SQL: one statement per query, composed from fixed pieces (never from user input).

Vector branch: the model's partial HNSW index (`embedding::halfvec(dim) <=> q`, `model_id = '<literal>'`, so
the planner can match the index), candidates taken in a MATERIALIZED CTE (with `hnsw.iterative_scan =
relaxed_order` the index may return rows out of order) and ranked after it by `distance + 0`: PostgreSQL 17
and later carry the CTE's ORDER BY out of it, so `ORDER BY distance` there would trust the index's order and
skip the sort (bench/search.py --tenants found the nearest images at ranks 52 to 61 that way).
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
from imagesearch.images.filters import FILTER_PREDICATES
from imagesearch.search import rerank
from imagesearch.search.plan import SearchPlan

TEXT_CONFIG = "english"

# The predicates of SearchFilters' filters live in images/filters.py (GET /images uses them too); a new
# filter's predicate goes there.
_EXCLUDE = sql.SQL(" AND i.id <> ALL(%(exclude)s::uuid[])")


@dataclass(frozen=True)
class QueryShape:
    """What varies the statement's text (and so its prepared plan)."""

    vector: bool
    keyword: bool
    stored_vector: bool = False  # the query vector is an image's stored vector, not a parameter
    filters: tuple[str, ...] = ()  # names of FILTER_PREDICATES
    exclude: bool = False  # leave the query image itself out (similar images)
    loose_keywords: bool = False  # also rank images matching some of the words (plain queries only)
    best_score: bool = False  # recommend: candidates near any positive example, scored by _best_score_branch
    cutoff: bool = False  # cutoff auto: each branch cut at its largest drop in scores
    sort: str = "relevance"  # a key of _SORTS
    facets: tuple[str, ...] = ()  # names of FACETS
    pooled: bool = False  # diversity / collapse: the pool's rows with their vectors, no paging in SQL
    explain: bool = False


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
    best_score = plan.examples is not None
    if plan.uses_vectors and not stored and not best_score and query_vector is None:
        raise ValueError("a vector search needs its query vector")
    shape = QueryShape(
        vector=plan.uses_vectors,
        keyword=plan.uses_keywords,
        stored_vector=stored,
        filters=plan.filters.predicates(),
        exclude=bool(plan.exclude),
        loose_keywords=plan.loose_keywords,
        best_score=best_score,
        cutoff=plan.cutoff == "auto",
        sort=plan.sort,
        facets=plan.facets,
        pooled=plan.pooled,
        explain=plan.explain,
    )
    params: dict[str, Any] = {
        **plan.filters.parameters(),
        "tenant": tenant_id,
        "text": plan.text,
        "query_image": plan.query_image,
        "exclude": list(plan.exclude),
        "vector_candidates": strategy.candidates,
        "keyword_candidates": strategy.candidates,
        "weight_vector": strategy.weight_vector,
        "weight_keyword": strategy.weight_keyword,
        "rrf_k": strategy.rrf_k,
        "min_score": plan.min_score if plan.min_score is not None else -2.0,
        "after_score": plan.after[0] if plan.after else None,
        "after_id": plan.after[1] if plan.after else None,
        "offset": plan.offset,
        "limit": min(strategy.candidates, rerank.POOL) if plan.pooled else plan.limit + 1,
        "cutoff_gap": strategy.cutoff_gap,
        "cutoff_min": strategy.cutoff_min_results,
        "cutoff_rule": strategy.cutoff_rule,
    }
    if plan.examples is not None:
        params["ex_vectors"] = list(plan.examples.vectors)  # vector[], as the query vector is a vector
        params["ex_positive"] = list(plan.examples.positive)
        params["ex_weights"] = list(plan.examples.weights)
    elif plan.uses_vectors and not stored:
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
    if shape.best_score:
        return _best_score_branch(model, shape)
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
            SELECT image_id, distance, rank() OVER (ORDER BY distance + 0) AS rank
            FROM vec_candidates
        )"""
    ).format(
        query_vector=_query_vector(model, shape),
        expr=sql.SQL("e.") + embeddings.vector_expression(model.dim),
        join=join,
        model=sql.Literal(model.id),
        filters=_filters(shape),
    )


def _best_score_branch(model: ModelRecord, shape: QueryShape) -> sql.Composable:
    """Recommend by best score: the HNSW neighbours of each positive example (one index scan each, in a
    LATERAL), scored by their best weighted similarity to a positive when it beats their best to a
    negative, else by minus the square of that negative similarity (closer to a negative: lower). Qdrant's
    rule; "best positive minus best negative" ranked a picture of the wanted kind below unrelated ones when
    a negative example looked like it (bench/relevance.py). `distance` is 1 - the score, so fusion,
    cut-off and paging treat it as the vector branch's."""
    join = sql.SQL(" JOIN images i ON i.id = e.image_id") if _has_image_filters(shape) else sql.SQL("")
    return sql.SQL(
        """
        ex AS MATERIALIZED (
            SELECT x.v, x.positive, x.weight
            FROM unnest(%(ex_vectors)s::halfvec({dim})[], %(ex_positive)s::bool[], %(ex_weights)s::float8[])
                 AS x(v, positive, weight)
        ),
        rec_ids AS MATERIALIZED (
            SELECT DISTINCT c.image_id
            FROM ex CROSS JOIN LATERAL (
                SELECT e.image_id
                FROM embeddings e{join}
                WHERE e.model_id = {model} AND e.tenant_id = %(tenant)s{filters}
                ORDER BY {expr} <=> ex.v
                LIMIT %(vector_candidates)s
            ) c
            WHERE ex.positive
        ),
        vec_candidates AS MATERIALIZED (
            SELECT image_id, 1 - CASE WHEN neg IS NULL OR pos > neg THEN pos ELSE -(neg * neg) END AS distance
            FROM (
                SELECT r.image_id,
                       max(ex.weight * (1 - ({expr} <=> ex.v))) FILTER (WHERE ex.positive) AS pos,
                       max(ex.weight * (1 - ({expr} <=> ex.v))) FILTER (WHERE NOT ex.positive) AS neg
                FROM rec_ids r JOIN embeddings e ON e.image_id = r.image_id AND e.model_id = {model}
                CROSS JOIN ex
                GROUP BY r.image_id
            ) s
        ),
        vec AS (
            SELECT image_id, distance, rank() OVER (ORDER BY distance) AS rank
            FROM vec_candidates
        )"""
    ).format(
        dim=sql.Literal(model.dim),
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


def _cut(branch: str, source: str, value: str, key: str) -> sql.Composable:
    """`{branch}_cut`: where cutoff auto cuts a branch. Its candidates sorted by `value` (higher is
    better), the drops between neighbours, and their mean (the spread over n - 1). Past %(cutoff_min)s
    candidates, the cut falls after the largest drop from a value at or above the candidates' mean value
    (rule "largest": the sparse tail of the list, where drops are large and mean nothing, is left out), or
    after the first drop (rule "first"), if that drop is at least %(cutoff_gap)s times the mean drop.
    `threshold` is the last kept value, NULL for no cut."""
    return sql.SQL(
        """
        {gaps} AS (
            SELECT {value} AS value, row_number() OVER w AS pos, {value} - lead({value}) OVER w AS gap
            FROM {source}
            WINDOW w AS (ORDER BY {value} DESC, {key})
        ),
        {stats} AS (
            SELECT count(*) AS n, avg(value) AS mean_value,
                   coalesce(max(value) - min(value), 0) / greatest(count(*) - 1, 1) AS mean_gap
            FROM {gaps}
        ),
        {cut} AS (
            SELECT {branch}::text AS branch, s.n AS candidates, s.mean_gap, b.pos, b.value, b.gap,
                   CASE WHEN b.gap > 0 AND b.gap >= %(cutoff_gap)s * s.mean_gap THEN b.value END AS threshold
            FROM {stats} s
            LEFT JOIN LATERAL (
                SELECT * FROM {gaps}
                WHERE pos >= %(cutoff_min)s AND gap IS NOT NULL
                  AND (%(cutoff_rule)s = 'largest' OR gap >= %(cutoff_gap)s * s.mean_gap)
                  AND (%(cutoff_rule)s = 'first' OR value >= s.mean_value)
                ORDER BY CASE WHEN %(cutoff_rule)s = 'first' THEN pos END, gap DESC, pos
                LIMIT 1
            ) b ON true
        )"""
    ).format(
        gaps=sql.Identifier(f"{branch}_gaps"),
        stats=sql.Identifier(f"{branch}_stats"),
        cut=sql.Identifier(f"{branch}_cut"),
        branch=sql.Literal(branch),
        value=sql.SQL(value),
        source=sql.Identifier(source),
        key=sql.SQL(key),
    )


_VECTOR_KEPT = "1 - f.vector_distance >= coalesce((SELECT threshold FROM vec_cut), '-Infinity')"
_KEYWORD_KEPT = "f.keyword_score >= coalesce((SELECT threshold FROM kw_cut), '-Infinity')"


def _cut_predicate(shape: QueryShape) -> sql.Composable:
    if not shape.cutoff:
        return sql.SQL("")
    if shape.vector and shape.keyword:
        return sql.SQL(f" AND ({_VECTOR_KEPT} OR {_KEYWORD_KEPT})")
    return sql.SQL(f" AND {_VECTOR_KEPT if shape.vector else _KEYWORD_KEPT}")


# Facets over the relevant set: the top 20 values of each, by count. Dates in UTC.
FACETS: dict[str, str] = {
    "tags": "SELECT t AS value, count(*) AS n FROM relevant_images, unnest(tags) t GROUP BY t",
    "auto_tags": "SELECT t AS value, count(*) AS n FROM relevant_images, unnest(auto_tags) t GROUP BY t",
    "year": "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY') AS value, count(*) AS n "
    "FROM relevant_images GROUP BY 1",
    "month": "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS value, count(*) AS n "
    "FROM relevant_images GROUP BY 1",
    # "Lisbon, Portugal", or the country alone far from any town; the `place` filter takes the value back.
    "place": "SELECT concat_ws(', ', place_city, place_country) AS value, count(*) AS n "
    "FROM relevant_images WHERE place_city IS NOT NULL OR place_country IS NOT NULL GROUP BY 1",
}
FACET_LIMIT = 20


def _facets(shape: QueryShape) -> sql.Composable:
    parts = [
        sql.SQL(
            "{name}, (SELECT coalesce(json_agg(json_build_object('value', value, 'count', n) "
            "ORDER BY n DESC, value), '[]') FROM ({query} ORDER BY n DESC, value LIMIT {limit}) x)"
        ).format(name=sql.Literal(name), query=sql.SQL(FACETS[name]), limit=sql.Literal(FACET_LIMIT))
        for name in shape.facets
    ]
    return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(parts))


# Each sort: its key (on the relevant row `r` and its image `i`), direction, and the cursor's comparison.
_SORTS: dict[str, tuple[str, str, str]] = {
    "relevance": ("r.score", "DESC", "<"),
    "newest": ("extract(epoch FROM i.created_at)::float8", "DESC", "<"),
    "oldest": ("extract(epoch FROM i.created_at)::float8", "ASC", ">"),
    # The date taken (EXIF wall clock); none sorts last: an infinity the cursor can compare and carry.
    "taken_newest": ("coalesce(extract(epoch FROM i.taken_at_local)::float8, '-Infinity')", "DESC", "<"),
    "taken_oldest": ("coalesce(extract(epoch FROM i.taken_at_local)::float8, 'Infinity')", "ASC", ">"),
}


# Composed once per (model, shape, paging) and kept as bytes: composing and quoting it per query costs more
# than the statement's planning (docs/search.md).
@lru_cache(maxsize=256)
def _statement_bytes(model_id: str, dim: int, shape: QueryShape, paged: bool) -> bytes:
    statement = _compose(ModelRecord(id=model_id, dim=dim, state="", bundle_uri=None), shape, paged=paged)
    return _squeeze(statement.as_bytes(None))


def _squeeze(statement: bytes) -> bytes:
    """Runs of whitespace outside string literals as one space: psycopg caches the parsing of statements
    up to 4,096 bytes only, and the indentation made the longer shapes miss it."""
    parts = statement.split(b"'")
    parts[::2] = [b" ".join(part.split()) for part in parts[::2]]
    return b"'".join(parts)


def _compose(model: ModelRecord, shape: QueryShape, *, paged: bool) -> sql.Composed:
    ctes: list[sql.Composable] = []
    if shape.vector:
        ctes.append(_vector_branch(model, shape))
    if shape.keyword:
        ctes.append(_keyword_branch(shape))
    ctes.append(_fusion(shape))
    if shape.cutoff and shape.vector:
        ctes.append(_cut("vec", "vec_candidates", "1 - distance", "image_id"))
    if shape.cutoff and shape.keyword:
        ctes.append(_cut("kw", "kw_candidates", "score", "image_id"))
    # The relevant set: past min_score and the cut-off; facets count it, the page is cut from it.
    ctes.append(
        sql.SQL(
            """
        relevant AS {materialized} (
            SELECT f.* FROM fused f WHERE f.score >= %(min_score)s{cut}
        )"""
        ).format(
            materialized=sql.SQL("MATERIALIZED" if shape.facets else ""),
            cut=_cut_predicate(shape),
        )
    )
    if shape.facets:
        ctes.append(
            sql.SQL(
                """
        relevant_images AS MATERIALIZED (
            SELECT i.tags, i.created_at, i.place_city, i.place_country, i.auto_tags
            FROM relevant r JOIN images i ON i.id = r.id
        )"""
            )
        )
    key, direction, compare = _SORTS[shape.sort]
    by_date = shape.sort != "relevance"
    cursor = (
        sql.SQL(
            f" AND ({key} {compare} %(after_score)s OR ({key} = %(after_score)s AND r.id > %(after_id)s))"
        )
        if paged and not shape.pooled
        else sql.SQL("")
    )
    page = sql.SQL(
        """
            SELECT r.*, {key} AS sort_key
            FROM relevant r{join}
            WHERE true{cursor}
            ORDER BY {key} {direction}, r.id
            OFFSET {offset}
            LIMIT %(limit)s"""
    ).format(
        key=sql.SQL(key),
        join=sql.SQL(" JOIN images i ON i.id = r.id") if by_date else sql.SQL(""),
        cursor=cursor,
        direction=sql.SQL(direction),
        offset=sql.SQL("0" if shape.pooled else "%(offset)s"),
    )
    columns: list[sql.Composable] = [
        sql.SQL(
            "p.id, p.score, p.sort_key, p.vector_rank, p.vector_distance, p.keyword_rank, p.keyword_score, "
            "i.tenant_id, i.storage_key, i.title, i.tags, i.filename, i.created_at, "
            # what the result cards show of EXIF and enrichment (SearchResult)
            "i.taken_at, i.taken_at_local, i.camera_make, i.camera_model, i.place_city, i.place_region, "
            "i.place_country, i.place_country_code, i.auto_tags"
        )
    ]
    joins: list[sql.Composable] = [sql.SQL(" JOIN images i ON i.id = p.id")]
    if shape.pooled:  # the vectors, as pgvector's binary halfvec (decoded by search.rerank), and the groups
        columns.append(
            sql.SQL("halfvec_send(e.{expr}) AS vector").format(expr=embeddings.vector_expression(model.dim))
        )
        columns.append(sql.SQL("i.duplicate_group"))  # collapse: near-duplicates by pHash (images.duplicates)
        joins.append(
            sql.SQL(" LEFT JOIN embeddings e ON e.image_id = p.id AND e.model_id = {}").format(
                sql.Literal(model.id)
            )
        )
    if shape.cutoff and shape.explain:
        branches = [b for b, used in (("vec", shape.vector), ("kw", shape.keyword)) if used]
        columns.append(
            sql.SQL("(SELECT json_agg(row_to_json(c)) FROM ({}) c) AS cut").format(
                sql.SQL(" UNION ALL ").join(sql.SQL(f"SELECT * FROM {b}_cut") for b in branches)
            )
        )
    body = sql.SQL("({page}) p{joins}").format(page=page, joins=sql.Composed(joins))
    if shape.facets:
        # One row even when the page is empty (a NULL id means none); the facets ride on one row, as text.
        columns.append(sql.SQL("CASE WHEN row_number() OVER () = 1 THEN fc.facets::text END AS facets"))
        body = sql.SQL("(SELECT {facets} AS facets) fc LEFT JOIN ({inner}) ON true").format(
            facets=_facets(shape), inner=body
        )
    return sql.SQL(
        """
        WITH {ctes}
        SELECT {columns}
        FROM {body}
        ORDER BY p.sort_key {direction}, p.id
        """
    ).format(
        ctes=sql.SQL(",").join(ctes),
        columns=sql.SQL(", ").join(columns),
        body=body,
        direction=sql.SQL(direction),
    )
