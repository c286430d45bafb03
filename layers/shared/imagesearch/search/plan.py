"""A search request, normalised: what to match, how many, from where."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np

from imagesearch.errors import InvalidRequest
from imagesearch.images.schemas import strip_control_characters
from imagesearch.search.schemas import Cutoff, SearchFilters, SearchMode, Sort

# Keyword queries past this many characters are cut: websearch_to_tsquery of a novel helps no one.
MAX_KEYWORD_QUERY = 1000


@dataclass(frozen=True)
class Examples:
    """The examples of a best-score recommendation: unit vectors, which are positive, and their weights."""

    vectors: np.ndarray = field(compare=False)  # (n, dim) float32
    positive: tuple[bool, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class SearchPlan:
    mode: SearchMode
    text: str | None = None
    query_vector: np.ndarray | None = field(default=None, compare=False)  # an uploaded picture's
    query_image: UUID | None = None  # a stored image's vector is the query
    filters: SearchFilters = field(default_factory=SearchFilters)
    limit: int = 20
    offset: int = 0
    after: tuple[float, UUID] | None = None  # the (score, id) a cursor points after
    min_score: float | None = None
    explain: bool = False
    exclude: tuple[UUID, ...] = ()  # images left out of the results (the examples themselves)
    cutoff: Cutoff = "none"
    sort: Sort = "relevance"
    facets: tuple[str, ...] = ()
    diversity: float = 0.0
    collapse: bool = False  # one result per group of near-duplicates
    examples: Examples | None = None  # best-score recommendation: these replace the query vector
    example_key: str | None = None  # what the examples were (for cursors)

    @property
    def uses_vectors(self) -> bool:
        return self.mode in ("hybrid", "vector")

    @property
    def uses_stored_vector(self) -> bool:
        """The query vector is a stored image's, read by the statement itself (no model run)."""
        return self.uses_vectors and self.query_vector is None and self.query_image is not None

    @property
    def pool_start(self) -> int:
        """Where a pooled page starts in the re-ordered pool: the cursor's position, or the offset."""
        return int(self.after[0]) if self.after else self.offset

    @property
    def pooled(self) -> bool:
        """Diversity and collapse re-order a pool of the best results in Python: its rows carry their
        vectors, and pages are positions in the new order."""
        return self.diversity > 0 or self.collapse

    @property
    def uses_keywords(self) -> bool:
        return self.mode in ("hybrid", "keyword") and self.text is not None

    @property
    def loose_keywords(self) -> bool:
        """Also rank images matching only some of the words: plain queries only (no websearch syntax)."""
        return self.uses_keywords and self.text is not None and is_plain_query(self.text)

    def fingerprint(self, model_id: str) -> str:
        """Ties a cursor to the query it came from."""
        parts = [
            self.mode,
            self.text,
            str(self.query_image),
            self.filters.model_dump_json(),
            model_id,
            self.cutoff,
            self.sort,
            self.min_score,
            self.diversity,
            self.collapse,
            self.example_key,
        ]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:16]


def is_plain_query(text: str) -> bool:
    """No websearch syntax ("phrase", -word, or): its words may also be matched one by one."""
    words = text.lower().split()
    return '"' not in text and "or" not in words and not any(w.startswith("-") for w in words)


def plan_search(
    *,
    query: str | None,
    image_id: UUID | None,
    mode: SearchMode,
    limit: int,
    offset: int | None = None,
    filters: SearchFilters | None = None,
    min_score: float | None = None,
    explain: bool = False,
    query_vector: np.ndarray | None = None,
    cutoff: Cutoff = "none",
    sort: Sort = "relevance",
    facets: Sequence[str] | None = None,
    diversity: float = 0.0,
    collapse: bool = False,
) -> SearchPlan:
    """The plan of a text, stored-image or uploaded-picture query (InvalidRequest when nothing is left
    to search with)."""
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
        exclude=(image_id,) if image_id is not None else (),
        cutoff=cutoff,
        sort=sort,
        facets=tuple(facets or ()),
        diversity=diversity,
        collapse=collapse,
    )
