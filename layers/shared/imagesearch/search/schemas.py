"""POST /search request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from imagesearch.images.schemas import Tags

SearchMode = Literal["hybrid", "vector", "keyword"]


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

    @model_validator(mode="after")
    def _something_to_search(self) -> SearchRequest:
        if (self.query is None or not self.query.strip()) and self.image_id is None:
            raise ValueError("give a query, an image_id, or both")
        if self.mode == "keyword" and (self.query is None or not self.query.strip()):
            raise ValueError("keyword mode needs a query")
        if self.cursor is not None and self.offset is not None:
            raise ValueError("give a cursor or an offset, not both")
        return self


class Explain(BaseModel):
    vector_rank: int | None
    vector_distance: float | None
    keyword_rank: int | None
    keyword_score: float | None


class SearchResult(BaseModel):
    id: UUID
    score: float
    title: str | None
    filename: str | None
    tags: list[str]
    url: str | None
    thumbnail_url: str | None
    explain: Explain | None = None


class SearchResponse(BaseModel):
    results: list[SearchResult]
    next_cursor: str | None
    took_ms: float
    model: str
    mode: SearchMode = Field(description="the mode that ran (hybrid without text runs as vector)")
