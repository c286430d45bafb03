"""POST /search request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from imagesearch.images.schemas import Tags

SearchMode = Literal["hybrid", "vector", "keyword"]
Cutoff = Literal["auto", "none"]
Sort = Literal["relevance", "newest", "oldest"]
Facet = Literal["tags", "year", "month"]
Collapse = Literal["duplicates"]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-01-31T00:00:00Z)")
    return value


AwareDatetime = Annotated[datetime | None, AfterValidator(_aware)]


# Each field that is set narrows both branches by one predicate of search/sql.py (FILTER_PREDICATES), named
# by `predicates()` and fed by `parameters()`: a new filter is a field here and its SQL there.
class SearchFilters(BaseModel):
    """Narrow the results; every filter that is set applies (tags: any or all of them)."""

    model_config = ConfigDict(extra="forbid")

    tags: Tags = Field(
        default=None, description="images with any of these tags (all of them with tags_mode=all)"
    )
    tags_mode: Literal["any", "all"] = "any"
    created_after: AwareDatetime = None
    created_before: AwareDatetime = None

    @model_validator(mode="after")
    def _range(self) -> SearchFilters:
        if self.created_after and self.created_before and self.created_after >= self.created_before:
            raise ValueError("created_after must be before created_before")
        return self

    def predicates(self) -> tuple[str, ...]:
        """The names of the predicates of the filters that are set, in field order (tags: by tags_mode)."""
        return tuple(
            f"tags_{self.tags_mode}" if name == "tags" else name
            for name in FILTER_FIELDS
            if _is_set(getattr(self, name))
        )

    def parameters(self) -> dict[str, Any]:
        """The SQL parameters of the predicates, named as the fields."""
        return {name: getattr(self, name) for name in FILTER_FIELDS}


# Fields that are filters (the others modify one).
FILTER_FIELDS = tuple(name for name in SearchFilters.model_fields if name != "tags_mode")


def _is_set(value: object) -> bool:
    return value is not None and value != []


def _unique(values: list[str] | None) -> list[str] | None:
    return list(dict.fromkeys(values)) if values is not None else None


Facets = Annotated[list[Facet] | None, Field(max_length=10), AfterValidator(_unique)]


def effective_cutoff(cutoff: Cutoff | None, sort: Sort, min_score: float | None) -> Cutoff:
    """A date sort needs a relevant set to sort: it implies "auto" unless `min_score` draws the line."""
    if cutoff is not None:
        return cutoff
    return "auto" if sort != "relevance" and min_score is None else "none"


class SearchRequest(BaseModel):
    """A text, example-image or hybrid query. At least one of `query` and `image_id`."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(default=None, description='free text; keyword syntax: "exact phrase", or, -not')
    image_id: UUID | None = Field(default=None, description="find images like this stored one")
    mode: SearchMode = "hybrid"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=512, description="next_cursor of the previous page")
    offset: int | None = Field(default=None, ge=0, le=1000, description="instead of a cursor")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0, description="leave out weaker results")
    explain: bool = False
    cutoff: Cutoff | None = Field(
        default=None,
        description='"auto": stop where the scores drop (docs/search.md, "Cut-offs"); "none": every '
        'candidate. Default: "none", or "auto" when `sort` is a date and no `min_score` is given',
    )
    sort: Sort = Field(
        default="relevance", description="order of the relevant set: by score, or by date (newest/oldest)"
    )
    facets: Facets = Field(default=None, description="counts over the relevant set, top 20 values each")
    diversity: float = Field(
        default=0.0, ge=0.0, le=1.0, description="re-rank by maximal marginal relevance (0 = off, 1 = most)"
    )
    collapse: Collapse | None = Field(
        default=None, description='"duplicates": one result per group of near-identical images'
    )

    @model_validator(mode="after")
    def _something_to_search(self) -> SearchRequest:
        if (self.query is None or not self.query.strip()) and self.image_id is None:
            raise ValueError("give a query, an image_id, or both")
        if self.mode == "keyword" and (self.query is None or not self.query.strip()):
            raise ValueError("keyword mode needs a query")
        if self.cursor is not None and self.offset is not None:
            raise ValueError("give a cursor or an offset, not both")
        if self.diversity > 0 and self.sort != "relevance":
            raise ValueError("diversity re-ranks by relevance: use it with sort=relevance")
        return self


class Explain(BaseModel):
    vector_rank: int | None
    vector_distance: float | None
    keyword_rank: int | None
    keyword_score: float | None


class CutoffExplain(BaseModel):
    """Where `cutoff: auto` cut, and why (in a response with `explain: true`)."""

    branch: Literal["vector", "keyword"]
    kept: int = Field(description="candidates of this branch kept")
    candidates: int = Field(description="candidates of this branch scored")
    threshold: float | None = Field(description="the last kept score (cosine similarity, or keyword score)")
    gap: float | None = Field(description="the drop after it")
    mean_gap: float | None = Field(description="the mean drop between neighbouring candidates")
    reason: str


class FacetCount(BaseModel):
    value: str
    count: int


class SearchResult(BaseModel):
    id: UUID
    score: float
    title: str | None
    filename: str | None
    tags: list[str]
    created_at: datetime
    url: str | None
    thumbnail_url: str | None
    duplicates: int | None = Field(
        default=None, description='with collapse: "duplicates", how many near-identical images it stands for'
    )
    explain: Explain | None = None


class SearchResponse(BaseModel):
    results: list[SearchResult]
    next_cursor: str | None
    took_ms: float
    model: str
    mode: SearchMode = Field(description="the mode that ran (hybrid without text runs as vector)")
    facets: dict[str, list[FacetCount]] | None = Field(
        default=None, description="with `facets`: counts over the relevant set (after cut-off and filters)"
    )
    cutoff: list[CutoffExplain] | None = Field(
        default=None, description="with cutoff auto and explain: where each branch was cut, and why"
    )


RecommendStrategy = Literal["average", "best_score"]
MAX_EXAMPLES = 20


class Example(BaseModel):
    """One example: a stored image or a text, with a weight."""

    model_config = ConfigDict(extra="forbid")

    image_id: UUID | None = None
    text: str | None = Field(default=None, max_length=1000)
    weight: float = Field(default=1.0, gt=0.0, le=10.0)

    @model_validator(mode="after")
    def _one(self) -> Example:
        if (self.image_id is None) == (self.text is None):
            raise ValueError("an example is an image_id or a text")
        return self


class RecommendOptions(BaseModel):
    """A recommendation's examples and options; POST /recommend/images takes it as its `request` field,
    beside the uploaded pictures (so its positive list may be empty there)."""

    model_config = ConfigDict(extra="forbid")

    positive: list[Example] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    negative: list[Example] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    strategy: RecommendStrategy = Field(
        default="best_score",
        description="best_score: each image's best positive similarity when it beats its best negative one, "
        "else minus the square of that negative similarity; average: one query vector, the weighted "
        "positives minus the weighted negatives",
    )
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=512)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    min_score: float | None = Field(default=None, ge=-10.0, le=10.0)
    cutoff: Cutoff = "none"
    explain: bool = False

    @model_validator(mode="after")
    def _few_examples(self) -> RecommendOptions:
        if len(self.positive) + len(self.negative) > MAX_EXAMPLES:
            raise ValueError(f"at most {MAX_EXAMPLES} examples, positive and negative together")
        return self


class RecommendRequest(RecommendOptions):
    """More like the positive examples, less like the negative ones."""

    positive: list[Example] = Field(min_length=1, max_length=MAX_EXAMPLES)
