"""Search: run a plan's statement and shape the answer (with shadow runs on sampled requests)."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from uuid import UUID

import numpy as np
from psycopg.rows import dict_row

from imagesearch.auth.tenant import Tenant
from imagesearch.concurrency import in_thread
from imagesearch.config import SearchStrategy
from imagesearch.db import Database, embeddings
from imagesearch.db.model_records import ModelRecord
from imagesearch.db.pool import hnsw_settings
from imagesearch.errors import Conflict, NotFound
from imagesearch.images import object_keys, repository
from imagesearch.images.schemas import camera_name, place_of, taken_at_shown
from imagesearch.model.registry import ModelRegistry
from imagesearch.observability import SEARCH_LATENCY, metrics, tracer
from imagesearch.search import rerank
from imagesearch.search.cursor import decode_cursor, encode_cursor
from imagesearch.search.plan import SearchPlan
from imagesearch.search.schemas import CutoffExplain, Explain, FacetCount, SearchResponse, SearchResult
from imagesearch.search.shadow import CandidateRun, ShadowRunner
from imagesearch.search.shadow_candidates import remote_ranking
from imagesearch.search.sql import SearchQuery, search_query
from imagesearch.storage.urls import UrlCache


def latency_mode(plan: SearchPlan) -> str:
    """SearchLatency's `mode`: the plan's mode, or what a query by example searches with."""
    if plan.example_key is not None:
        return "recommend"  # POST /recommend[/images]
    if plan.query_vector is not None:
        return "image"  # an uploaded picture
    if plan.query_image is not None and plan.text is None:
        return "similar"  # a stored image's vector
    return plan.mode  # hybrid, vector or keyword: by text (and a stored image, when both are given)


@lru_cache(maxsize=8)
def _unset_defaults(names: frozenset[str]) -> dict[str, Any] | None:
    """The defaults of the SearchResult fields not in `names`, as model_construct sets them; None where
    model_construct must do the work itself: a name it does not know, a default made by a factory, private
    attributes or extra fields."""
    fields = SearchResult.model_fields
    unset = {name: field for name, field in fields.items() if name not in names}
    if (
        not names <= fields.keys()
        or any(field.default_factory for field in unset.values())
        or SearchResult.__private_attributes__
        or SearchResult.model_config.get("extra") == "allow"
    ):
        return None
    return {name: field.default for name, field in unset.items()}


def _construct_result(**values: Any) -> SearchResult:
    """SearchResult.model_construct(**values), unvalidated: the fields given are the ones set (so the
    others stay out of the response). model_construct resolves each default and sorts the values into set
    and unset fields on every call (16 us a result, 4 us this way, the defaults looked up once per set of
    names)."""
    names = frozenset(values)
    defaults = _unset_defaults(names)
    if defaults is None:
        return SearchResult.model_construct(**values)
    result = SearchResult.__new__(SearchResult)
    object.__setattr__(result, "__dict__", {**values, **defaults})
    object.__setattr__(result, "__pydantic_fields_set__", set(names))
    object.__setattr__(result, "__pydantic_extra__", None)
    object.__setattr__(result, "__pydantic_private__", None)
    return result


@dataclass
class Hit:
    id: UUID
    score: float
    row: dict[str, Any]
    duplicates: int | None = None  # collapse: the near-duplicates this result stands for


@dataclass
class Ranked:
    """A statement's answer: the hits (limit + 1, or the pool) and what rode along on its rows."""

    hits: list[Hit]
    facets: dict[str, Any] | None = None
    cut: list[dict[str, Any]] | None = None


def _text_to_embed(plan: SearchPlan) -> str | None:
    """The text whose embedding `plan`'s statement needs; None when it needs no query vector or has one (an
    uploaded picture's, a stored image's, the examples')."""
    if (
        not plan.uses_vectors
        or plan.uses_stored_vector
        or plan.query_vector is not None
        or plan.examples is not None
    ):
        return None
    assert plan.text is not None  # a plan has text, an image or a vector
    return plan.text


def _ranked(plan: SearchPlan, rows: list[dict[str, Any]]) -> Ranked:
    """A statement's rows as hits, and the facets and cut-off that ride on them."""
    first = rows[0] if rows else {}
    # The facets ride on one row (as text: parsed once, search/sql.py).
    facets = None
    if plan.facets:
        facets = next((row["facets"] for row in rows if row["facets"] is not None), "{}")
    return Ranked(
        hits=[Hit(row["id"], float(row["score"]), row) for row in rows if row["id"] is not None],
        facets=json.loads(facets) if facets is not None else None,
        cut=first.get("cut"),
    )


def _unmatched_example(ranked: Ranked, plan: SearchPlan) -> bool:
    """A first page by a stored image that found nothing: `_check_query_image` says why, when it is the
    example's fault."""
    return not ranked.hits and plan.query_image is not None and plan.after is None


class SearchService:
    """Runs searches for one tenant at a time against the search database."""

    def __init__(
        self,
        db: Database,
        models: ModelRegistry,
        urls: UrlCache,
        *,
        strategy: SearchStrategy | None = None,
        shadow: ShadowRunner | None = None,
    ) -> None:
        self.db = db
        self.models = models
        self.urls = urls
        self.strategy = strategy or SearchStrategy()
        self.shadow = shadow

    def by_image(self, data: bytes) -> np.ndarray:
        """The active model's vector of an uploaded picture (not stored)."""
        record = self.model_for(self.strategy)
        with tracer.span("model"):
            vector: np.ndarray = self.models.embedder(record).embed_images([data])[0]
        return vector

    def search(self, tenant: Tenant, plan: SearchPlan, *, cursor: str | None = None) -> SearchResponse:
        return self._search(tenant, plan, cursor, self._sampled(plan, cursor))

    async def asearch(self, tenant: Tenant, plan: SearchPlan, *, cursor: str | None = None) -> SearchResponse:
        """`search` for an async route: the statement is awaited in the event loop (`Database.aread`), with
        no worker thread, when nothing else in the search may block. Otherwise the search runs on a worker
        thread: all of it when a shadow comparison is sampled or the model's record is due to be read
        again, the statement's making when the text tower must embed the query (a text not in the cache).
        """
        shadow = self._sampled(plan, cursor)
        record = None if shadow is not None else self.models.record_in_memory(self.strategy.model_id)
        if record is None:
            return await in_thread(functools.partial(self._search, tenant, plan, cursor, shadow))
        started = time.perf_counter()
        plan, fingerprint = self._paged(plan, record, cursor)
        text = _text_to_embed(plan)
        if text is not None and not self.models.text_cached(record, text):
            query = await in_thread(functools.partial(self.query, tenant, plan, self.strategy, record=record))
        else:
            query = self.query(tenant, plan, self.strategy, record=record)
        with tracer.span("database"):
            rows = await self.db.aread(
                query.sql, query.params, settings=self._settings(query, self.strategy), dicts=True
            )
        ranked = _ranked(plan, rows)
        live_ms = (time.perf_counter() - started) * 1000
        if _unmatched_example(ranked, plan):
            await in_thread(functools.partial(self._check_query_image, tenant, plan, record))
        return self._answer(tenant, plan, record, fingerprint, ranked, started, live_ms, None, None)

    def _search(
        self, tenant: Tenant, plan: SearchPlan, cursor: str | None, shadow: ShadowRunner | None
    ) -> SearchResponse:
        started = time.perf_counter()
        record = self.model_for(self.strategy)
        plan, fingerprint = self._paged(plan, record, cursor)
        # The candidate runs while the live query does.
        candidate = shadow.start(self._candidate(tenant, plan, shadow.candidate)) if shadow else None
        ranked = self.execute(tenant, plan, self.strategy, record=record)
        live_ms = (time.perf_counter() - started) * 1000
        if _unmatched_example(ranked, plan):
            self._check_query_image(tenant, plan, record)
        return self._answer(tenant, plan, record, fingerprint, ranked, started, live_ms, shadow, candidate)

    def _sampled(self, plan: SearchPlan, cursor: str | None) -> ShadowRunner | None:
        """The shadow runner when this search is sampled for a comparison (first pages only)."""
        if cursor is None and plan.after is None and self.shadow and self.shadow.sampled():
            return self.shadow
        return None

    def _paged(self, plan: SearchPlan, record: ModelRecord, cursor: str | None) -> tuple[SearchPlan, str]:
        """`plan` from the cursor's position on, and the fingerprint the page's cursor carries."""
        fingerprint = plan.fingerprint(record.id)
        if cursor is not None:
            plan = replace(plan, after=decode_cursor(cursor, fingerprint))
        return plan, fingerprint

    def _answer(
        self,
        tenant: Tenant,
        plan: SearchPlan,
        record: ModelRecord,
        fingerprint: str,
        ranked: Ranked,
        started: float,
        live_ms: float,
        shadow: ShadowRunner | None,
        candidate: Any,
    ) -> SearchResponse:
        """The response to `plan` from the statement's `ranked` rows (and the shadow comparison, if any)."""
        hits = ranked.hits
        if plan.pooled:  # a page of the re-ordered pool; the cursor holds the position after it
            start = plan.pool_start
            hits = self._reorder(hits, plan, record.dim)
            page = hits[start : start + plan.limit]
            more = len(hits) > start + plan.limit
            next_cursor = encode_cursor(float(start + plan.limit), page[-1].id, fingerprint) if more else None
        else:
            page = hits[: plan.limit]
            next_cursor = None
            if len(hits) > plan.limit:
                next_cursor = encode_cursor(float(page[-1].row["sort_key"]), page[-1].id, fingerprint)
        if shadow is not None and candidate is not None:
            shadow.finish(
                candidate,
                live_ids=[hit.id for hit in page],
                live_ms=live_ms,
                k=plan.limit,
                tenant_id=tenant.id,
                mode=plan.mode,
                query_key=fingerprint,
            )
        # The page's twenty URLs in one pass over the cache (storage/urls.py): originals, then thumbnails.
        keys = [hit.row["storage_key"] for hit in page]
        keys += object_keys.thumbnail_keys([(hit.row["tenant_id"], hit.id) for hit in page])
        urls = self.urls.get_many(keys)
        n = len(page)
        results = [self._result(hit, plan.explain, urls[i], urls[n + i]) for i, hit in enumerate(page)]
        took_ms = (time.perf_counter() - started) * 1000
        metrics.add(SEARCH_LATENCY, took_ms, latency_mode(plan))
        response = SearchResponse(
            results=results,
            next_cursor=next_cursor,
            took_ms=round(took_ms, 2),
            model=record.id,
            mode=plan.mode,
        )
        if ranked.facets is not None:  # keys set only when asked for, so responses leave them out otherwise
            response.facets = {
                name: [FacetCount.model_validate(v) for v in values] for name, values in ranked.facets.items()
            }
        if ranked.cut and plan.explain:
            response.cutoff = [self._cut_explain(c) for c in ranked.cut]
        return response

    def run(
        self, tenant: Tenant, plan: SearchPlan, strategy: SearchStrategy, *, record: ModelRecord | None = None
    ) -> list[Hit]:
        """The ranked hits of `plan` under `strategy`: limit + 1 rows (the extra one says "there is more")."""
        return self.execute(tenant, plan, strategy, record=record).hits

    def execute(
        self, tenant: Tenant, plan: SearchPlan, strategy: SearchStrategy, *, record: ModelRecord | None = None
    ) -> Ranked:
        """Run `plan`'s one statement: its hits, and the facets and cut-off that come on its rows."""
        query = self.query(tenant, plan, strategy, record=record)
        with tracer.span("database"):
            rows = self.db.read(
                query.sql, query.params, settings=self._settings(query, strategy), row_factory=dict_row
            )
        return _ranked(plan, rows)

    @staticmethod
    def _settings(query: SearchQuery, strategy: SearchStrategy) -> dict[str, str] | None:
        """One round trip: the strategy's HNSW settings travel with the statement (db.pool.Database.read)."""
        return hnsw_settings(strategy.effective_ef_search) if query.uses_vector_index else None

    def query(
        self, tenant: Tenant, plan: SearchPlan, strategy: SearchStrategy, *, record: ModelRecord | None = None
    ) -> SearchQuery:
        """The statement of `plan` under `strategy`, its query vector computed first (bench/search.py runs
        the same statement through pgbench)."""
        record = record or self.model_for(strategy)
        return search_query(tenant.id, record, plan, strategy, query_vector=self.query_vector(plan, record))

    def query_vector(self, plan: SearchPlan, record: ModelRecord) -> np.ndarray | None:
        """The plan's query embedding under `record`'s model; None when a stored vector or keywords alone
        answer it, or the examples' vectors (they travel as parameters)."""
        text = _text_to_embed(plan)
        if text is None:
            return plan.query_vector if plan.uses_vectors and not plan.uses_stored_vector else None
        with tracer.span("model"):  # the text tower, or the query cache
            return self.models.text_vector(record, text)

    def model_for(self, strategy: SearchStrategy) -> ModelRecord:
        return self.models.record(strategy.model_id) if strategy.model_id else self.models.active()

    # --- helpers -----------------------------------------------------------------------------------------
    def _candidate(self, tenant: Tenant, plan: SearchPlan, strategy: SearchStrategy) -> CandidateRun:
        """The candidate's ranking of the same query: here, or at another deployment's endpoint."""
        if strategy.endpoint is not None:
            return lambda: remote_ranking(strategy, plan)
        return lambda: [hit.id for hit in self.run(tenant, plan, strategy)][: plan.limit]

    def _check_query_image(self, tenant: Tenant, plan: SearchPlan, record: ModelRecord) -> None:
        """Only when a query by example found nothing: say why, if it is the example's fault."""
        image_id = plan.query_image
        assert image_id is not None  # _unmatched_example
        with self.db.connection() as conn:
            image = repository.get(conn, tenant.id, image_id)
            embedded = image is not None and embeddings.exists(conn, image_id, record.id)
        if image is None:
            raise NotFound(f"no image {image_id}")
        if not embedded:
            raise Conflict(f"image {image_id} is {image.status}: it has no embedding to search with yet")

    def _reorder(self, hits: list[Hit], plan: SearchPlan, dim: int) -> list[Hit]:
        """The pool in diversity order, then one result per near-duplicate group (collapse). Without
        collapse, only as far as the page after this one needs (the rest is never shown)."""
        vectors = rerank.unit_rows([hit.row["vector"] for hit in hits], dim)
        similarity = vectors @ vectors.T
        count = len(hits) if plan.collapse else plan.pool_start + plan.limit + 1
        order = rerank.mmr_order([hit.score for hit in hits], similarity, plan.diversity, count)
        if not plan.collapse:
            return [hits[i] for i in order]
        groups = [hit.row.get("duplicate_group") for hit in hits]
        kept = rerank.collapse(order, similarity, self.strategy.duplicate_similarity, groups)
        return [replace(hits[i], duplicates=n) for i, n in kept]

    def _cut_explain(self, cut: dict[str, Any]) -> CutoffExplain:
        """A branch's cut-off row (search/sql.py `_cut`) in words."""
        n, pos, gap, mean = cut["candidates"], cut["pos"], cut["gap"], cut["mean_gap"]
        needed = self.strategy.cutoff_gap
        if n == 0:
            reason = "no candidates"
        elif gap is None:
            reason = (
                f"kept all {n}: no drop past the first {self.strategy.cutoff_min_results} reaches "
                f"{needed:g}x the mean drop ({mean:.4f})"
            )
        elif cut["threshold"] is not None:
            reason = (
                f"cut after {pos} of {n}: the drop to the next score ({gap:.4f}) is "
                f"{gap / mean:.1f}x the mean drop ({mean:.4f}); a cut needs {needed:g}x"
            )
        else:
            ratio = gap / mean if mean else 0.0
            reason = f"kept all {n}: the largest drop ({gap:.4f}) is {ratio:.1f}x the mean drop; "
            reason += f"a cut needs {needed:g}x"
        return CutoffExplain(
            branch="vector" if cut["branch"] == "vec" else "keyword",
            kept=pos if cut["threshold"] is not None else n,
            candidates=n,
            threshold=cut["threshold"],
            gap=gap,
            mean_gap=mean if n else None,
            reason=reason,
        )

    def _result(self, hit: Hit, explain: bool, url: str, thumbnail_url: str) -> SearchResult:
        row = hit.row
        # Built unvalidated: every value comes typed from the statement's row (validation was a third of this
        # method's time); the fields passed are the ones set, so unset keys still leave the response.
        result = _construct_result(
            id=hit.id,
            score=round(hit.score, 6),
            title=row["title"],
            filename=row["filename"],
            tags=row["tags"],
            created_at=row["created_at"],
            url=url,
            thumbnail_url=thumbnail_url,
            taken_at=taken_at_shown(row["taken_at_local"], row["taken_at"]),
            camera=camera_name(row["camera_make"], row["camera_model"]),
            # The place as stored (images.schemas). (Not model_construct of the stored fields: pydantic
            # inspects each default factory's signature there, 0.5 ms a result.)
            place=place_of(
                row["place_city"], row["place_region"], row["place_country"], row["place_country_code"]
            ),
            auto_tags=row["auto_tags"],
        )
        if hit.duplicates is not None:
            result.duplicates = hit.duplicates
        if explain:  # set only when asked, so the response leaves the key out otherwise
            result.explain = Explain(
                vector_rank=row["vector_rank"],
                vector_distance=row["vector_distance"],
                keyword_rank=row["keyword_rank"],
                keyword_score=row["keyword_score"],
            )
        return result
