"""Search: turn a request into one SQL statement, run it, and shape the answer."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from psycopg.rows import dict_row

from imagesearch.auth.tenant import Tenant
from imagesearch.db import Database
from imagesearch.db.models import ModelRecord
from imagesearch.db.pool import hnsw_settings
from imagesearch.errors import Conflict, InvalidRequest, NotFound
from imagesearch.images import keys
from imagesearch.images.schemas import strip_control_characters
from imagesearch.search.models import SearchModels
from imagesearch.search.schemas import Explain, SearchFilters, SearchMode, SearchResponse, SearchResult
from imagesearch.search.shadow import ShadowRunner
from imagesearch.search.sql import QueryShape, search_statement
from imagesearch.search.strategy import SearchStrategy
from imagesearch.storage import ObjectStorage
from imagesearch.storage.urls import UrlCache

# Keyword queries past this many characters are cut: websearch_to_tsquery of a novel helps no one.
MAX_KEYWORD_QUERY = 1000


@dataclass(frozen=True)
class SearchPlan:
    """A normalised request: what to match, how many, from where."""

    mode: SearchMode
    text: str | None = None
    query_vector: np.ndarray | None = field(default=None, compare=False)
    query_image: UUID | None = None
    filters: SearchFilters = field(default_factory=SearchFilters)
    limit: int = 20
    offset: int = 0
    after: tuple[float, UUID] | None = None
    min_score: float | None = None
    explain: bool = False
    exclude_query_image: bool = False

    def fingerprint(self, model_id: str) -> str:
        """Ties a cursor to the query it came from."""
        parts = [self.mode, self.text, str(self.query_image), self.filters.model_dump_json(), model_id]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:16]


@dataclass
class Hit:
    id: UUID
    score: float
    row: dict[str, Any]


def is_plain_query(text: str) -> bool:
    """No websearch syntax ("phrase", -word, or): its words may also be matched one by one."""
    words = text.lower().split()
    return '"' not in text and "or" not in words and not any(w.startswith("-") for w in words)


def encode_cursor(score: float, image_id: UUID, fingerprint: str) -> str:
    raw = json.dumps([score.hex(), str(image_id), fingerprint]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> tuple[float, UUID]:
    try:
        score_hex, image_id, expected = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        value = (float.fromhex(score_hex), UUID(image_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("malformed cursor") from None
    if expected != fingerprint:
        raise InvalidRequest("this cursor belongs to another query")
    return value


class SearchService:
    """Runs searches for one tenant at a time against the search database."""

    def __init__(
        self,
        db: Database,
        storage: ObjectStorage,
        models: SearchModels,
        *,
        strategy: SearchStrategy | None = None,
        url_expiry_seconds: int = 900,
        shadow: ShadowRunner | None = None,
        urls: UrlCache | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.models = models
        self.strategy = strategy or SearchStrategy()
        self.url_expiry_seconds = url_expiry_seconds
        self.urls = urls or UrlCache(storage, expiry_seconds=url_expiry_seconds)
        self.shadow = shadow

    # --- entry points ------------------------------------------------------------------------------------
    def plan(
        self,
        *,
        query: str | None,
        image_id: UUID | None,
        mode: SearchMode,
        limit: int,
        cursor: str | None = None,
        offset: int | None = None,
        filters: SearchFilters | None = None,
        min_score: float | None = None,
        explain: bool = False,
        query_vector: np.ndarray | None = None,
    ) -> SearchPlan:
        text = strip_control_characters(query or "").strip()[:MAX_KEYWORD_QUERY] or None
        if text is None and image_id is None and query_vector is None:
            raise InvalidRequest("the query has no searchable characters")
        if text is None and mode == "hybrid":
            mode = "vector"  # nothing to match keywords against: the vector branch alone, with its scores
        return SearchPlan(
            mode=mode,
            text=text,
            query_vector=query_vector,
            query_image=image_id,
            filters=filters or SearchFilters(),
            limit=limit,
            offset=offset or 0,
            min_score=min_score,
            explain=explain,
            exclude_query_image=image_id is not None,
        )

    def by_image(self, data: bytes) -> np.ndarray:
        """The active model's vector of an uploaded picture (not stored)."""
        record = self._model(self.strategy)
        vector: np.ndarray = self.models.embedder(record).embed_images([data])[0]
        return vector

    def search(self, tenant: Tenant, plan: SearchPlan, *, cursor: str | None = None) -> SearchResponse:
        started = time.perf_counter()
        record = self._model(self.strategy)
        fingerprint = plan.fingerprint(record.id)
        if cursor is not None:
            plan = replace(plan, after=decode_cursor(cursor, fingerprint))
        # Shadow mode samples first pages only; the candidate runs while the live query does.
        shadow = (
            self.shadow if self.shadow is not None and plan.after is None and self.shadow.sampled() else None
        )
        candidate = (
            shadow.start(lambda: self._candidate_ids(tenant, plan, shadow.candidate)) if shadow else None
        )
        hits = self.run(tenant, plan, self.strategy, record=record)
        live_ms = (time.perf_counter() - started) * 1000
        if not hits and plan.query_image is not None and plan.after is None:
            self._check_query_image(tenant, plan.query_image, record)
        page = hits[: plan.limit]
        next_cursor = None
        if len(hits) > plan.limit:
            next_cursor = encode_cursor(page[-1].score, page[-1].id, fingerprint)
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
        return SearchResponse(
            results=[self._result(hit, plan.explain) for hit in page],
            next_cursor=next_cursor,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            model=record.id,
            mode=plan.mode,
        )

    def run(
        self, tenant: Tenant, plan: SearchPlan, strategy: SearchStrategy, *, record: ModelRecord | None = None
    ) -> list[Hit]:
        """The ranked hits of `plan` under `strategy`: limit + 1 rows (the extra one says "there is more")."""
        statement, params, use_vector = self.statement(tenant, plan, strategy, record=record)
        with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if use_vector:
                _index_settings(conn, strategy, session=self.db.session_settings)
            cur.execute(statement, params)
            rows = cur.fetchall()
        return [Hit(id=row["id"], score=float(row["score"]), row=row) for row in rows]

    def statement(
        self, tenant: Tenant, plan: SearchPlan, strategy: SearchStrategy, *, record: ModelRecord | None = None
    ) -> tuple[bytes, dict[str, Any], bool]:
        """The SQL and parameters of `plan` (and whether it uses the vector index); bench/search.py runs
        the same statement through pgbench."""
        record = record or self._model(strategy)
        use_vector = plan.mode in ("hybrid", "vector")
        use_keyword = plan.mode in ("hybrid", "keyword") and plan.text is not None
        stored = use_vector and plan.query_vector is None and plan.query_image is not None
        filters = plan.filters
        shape = QueryShape(
            vector=use_vector,
            keyword=use_keyword,
            stored_vector=stored,
            tags=filters.tags_mode if filters.tags else None,
            created_after=filters.created_after is not None,
            created_before=filters.created_before is not None,
            exclude=plan.exclude_query_image,
            loose_keywords=use_keyword and plan.text is not None and is_plain_query(plan.text),
        )
        params: dict[str, Any] = {
            "tenant": tenant.id,
            "text": plan.text,
            "query_image": plan.query_image,
            "exclude": plan.query_image,
            "tags": filters.tags,
            "created_after": filters.created_after,
            "created_before": filters.created_before,
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
        if use_vector and not stored:
            vector = plan.query_vector
            if vector is None:
                assert plan.text is not None  # the plan guarantees text or an image
                vector = self.models.text_vector(record, plan.text)
            params["query_vector"] = np.asarray(vector, dtype=np.float32)
        return search_statement(record, shape, paged=plan.after is not None), params, use_vector

    def _candidate_ids(self, tenant: Tenant, plan: SearchPlan, strategy: SearchStrategy) -> list[UUID]:
        """The candidate's ranking of the same query: here, or at another deployment's endpoint."""
        if strategy.endpoint is None:
            return [hit.id for hit in self.run(tenant, plan, strategy)][: plan.limit]
        import httpx

        body: dict[str, Any] = {
            "query": plan.text,
            "image_id": str(plan.query_image) if plan.query_image else None,
            "mode": plan.mode,
            "limit": plan.limit,
            "filters": plan.filters.model_dump(mode="json"),
            "min_score": plan.min_score,
        }
        headers = {"Authorization": f"Bearer {strategy.api_key}"} if strategy.api_key else {}
        response = httpx.post(strategy.endpoint, json=body, headers=headers, timeout=10)
        response.raise_for_status()
        return [UUID(result["id"]) for result in response.json()["results"]]

    # --- helpers -----------------------------------------------------------------------------------------
    def _model(self, strategy: SearchStrategy) -> ModelRecord:
        return self.models.record(strategy.model_id) if strategy.model_id else self.models.active()

    def _check_query_image(self, tenant: Tenant, image_id: UUID, record: ModelRecord) -> None:
        """Only when a query by example found nothing: say why, if it is the example's fault."""
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT i.status, EXISTS (SELECT 1 FROM embeddings e "
                "                         WHERE e.image_id = i.id AND e.model_id = %s) "
                "FROM images i WHERE i.id = %s AND i.tenant_id = %s",
                (record.id, image_id, tenant.id),
            ).fetchone()
        if row is None:
            raise NotFound(f"no image {image_id}")
        status, embedded = row
        if not embedded:
            raise Conflict(f"image {image_id} is {status}: it has no embedding to search with yet")

    def _result(self, hit: Hit, explain: bool) -> SearchResult:
        row = hit.row
        result = SearchResult(
            id=hit.id,
            score=round(hit.score, 6),
            title=row["title"],
            filename=row["filename"],
            tags=row["tags"],
            url=self.urls.get(row["storage_key"]),
            thumbnail_url=self.urls.get(keys.thumbnail_key(row["tenant_id"], hit.id)),
        )
        if explain:  # set only when asked, so the response leaves the key out otherwise
            result.explain = Explain(
                vector_rank=row["vector_rank"],
                vector_distance=row["vector_distance"],
                keyword_rank=row["keyword_rank"],
                keyword_score=row["keyword_score"],
            )
        return result


def _index_settings(conn: psycopg.Connection, strategy: SearchStrategy, *, session: dict[str, str]) -> None:
    """HNSW settings for this transaction when the strategy differs from the pool's session settings.

    The live strategy's settings are set once per pooled connection (db.pool.hnsw_settings): a SET LOCAL
    per query cost a round trip and ~1 ms of driver time at 2 ms per search (bench/search.py). A shadow
    candidate with other settings gets SET LOCAL, which ends with its transaction.
    """
    wanted = hnsw_settings(strategy.effective_ef_search)
    changed = {name: value for name, value in wanted.items() if session.get(name) != value}
    if changed:
        conn.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in changed),
            [item for pair in changed.items() for item in pair],
        )
