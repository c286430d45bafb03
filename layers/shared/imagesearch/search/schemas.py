"""POST /search request and response shapes."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from imagesearch.images.schemas import Place, Tags

SearchMode = Literal["hybrid", "vector", "keyword"]
Cutoff = Literal["auto", "none"]
Sort = Literal["relevance", "newest", "oldest", "taken_newest", "taken_oldest"]
Facet = Literal["tags", "year", "month", "place", "auto_tags"]
Collapse = Literal["duplicates"]


def _written_date(value: Any) -> Any:
    """Dates are ISO 8601 text: pydantic would also read a number ("0.5") as seconds since 1970, which a
    query string's typo then silently means."""
    if isinstance(value, int | float) or (isinstance(value, str) and not _ISO_DATE.match(value)):
        raise ValueError("give an ISO 8601 date or time (e.g. 2024-07-14 or 2024-07-14T18:00:00Z)")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-01-31T00:00:00Z)")
    return value


AwareDatetime = Annotated[datetime | None, BeforeValidator(_written_date), AfterValidator(_aware)]


def _wall_clock(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is not None:
        raise ValueError(
            "a wall-clock time as the camera wrote it, without a time zone (e.g. 2024-07-14 or "
            "2024-07-14T18:00:00)"
        )
    return value


WallClockDatetime = Annotated[datetime | None, BeforeValidator(_written_date), AfterValidator(_wall_clock)]

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG); the haversine's sphere
HALF_CIRCUMFERENCE_KM = math.pi * EARTH_RADIUS_KM
Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]


class Near(BaseModel):
    """Within `radius_km` (great-circle distance) of a point."""

    model_config = ConfigDict(extra="forbid")

    lat: Latitude
    lon: Longitude
    radius_km: float = Field(gt=0.0, le=HALF_CIRCUMFERENCE_KM)

    def parameters(self) -> dict[str, float]:
        """The point, the radius, and a latitude/longitude box around the circle (for the index)."""
        angle = self.radius_km / EARTH_RADIUS_KM
        min_lat, max_lat = self.lat - math.degrees(angle), self.lat + math.degrees(angle)
        min_lon, max_lon = -180.0, 180.0
        if min_lat > -90.0 and max_lat < 90.0:  # no pole inside the circle
            spread = math.sin(angle) / math.cos(math.radians(self.lat))
            if spread < 1.0:
                dlon = math.degrees(math.asin(spread))
                if self.lon - dlon >= -180.0 and self.lon + dlon <= 180.0:  # else it crosses 180°
                    min_lon, max_lon = self.lon - dlon, self.lon + dlon
        return {
            "near_lat": self.lat,
            "near_lon": self.lon,
            "near_radius_km": self.radius_km,
            "near_min_lat": max(min_lat, -90.0),
            "near_max_lat": min(max_lat, 90.0),
            "near_min_lon": min_lon,
            "near_max_lon": max_lon,
        }


class BoundingBox(BaseModel):
    """Inside a latitude/longitude box; `min_lon` > `max_lon` is a box across the 180° meridian."""

    model_config = ConfigDict(extra="forbid")

    min_lat: Latitude
    min_lon: Longitude
    max_lat: Latitude
    max_lon: Longitude

    @model_validator(mode="after")
    def _range(self) -> BoundingBox:
        if self.min_lat > self.max_lat:
            raise ValueError("min_lat must not be above max_lat")
        return self

    def parameters(self) -> dict[str, float]:
        return {f"bbox_{name}": getattr(self, name) for name in type(self).model_fields}


# Each field that is set narrows both branches (and GET /images) by one predicate of images/filters.py
# (FILTER_PREDICATES), named by `predicates()` and fed by `parameters()`: a new filter is a field here and
# its SQL there. GET /images takes the fields as query parameters (search/filter_query.py).
class SearchFilters(BaseModel):
    """Narrow the results; every filter that is set applies (tags: any or all of them)."""

    model_config = ConfigDict(extra="forbid")

    tags: Tags = Field(
        default=None, description="images with any of these tags (all of them with tags_mode=all)"
    )
    tags_mode: Literal["any", "all"] = "any"
    auto_tags: Tags = Field(
        default=None, description="images the model labelled with any of these (zero-shot `auto_tags`)"
    )
    created_after: AwareDatetime = None
    created_before: AwareDatetime = None
    taken_after: WallClockDatetime = Field(
        default=None, description="taken at or after this wall-clock time (EXIF, as the camera wrote it)"
    )
    taken_before: WallClockDatetime = Field(default=None, description="taken before this wall-clock time")
    camera: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description='camera make and model contain this, ignoring case ("canon", "iphone 15")',
    )
    near: Near | None = Field(default=None, description="taken within radius_km of lat/lon (EXIF GPS)")
    bbox: BoundingBox | None = Field(default=None, description="taken inside this box (EXIF GPS)")
    place: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description='taken in this place, ignoring case and accents: "Lisbon" a city, region, country or '
        'code of that name; "Lisbon, Portugal" (a `place` facet value) that city in that region or country; '
        '"Springfield, Illinois, US" city, region, country',
    )

    @model_validator(mode="after")
    def _range(self) -> SearchFilters:
        if self.created_after and self.created_before and self.created_after >= self.created_before:
            raise ValueError("created_after must be before created_before")
        if self.taken_after and self.taken_before and self.taken_after >= self.taken_before:
            raise ValueError("taken_after must be before taken_before")
        if self.camera is not None and not self.camera.strip():
            raise ValueError("camera is empty")
        if self.place is not None and (len(names := place_names(self.place)) > 3 or not all(names)):
            raise ValueError('place: a name, or "city, region or country", or "city, region, country"')
        # Text: PostgreSQL takes no NUL, and no other control character means a thing in a filter.
        for name in FILTER_FIELDS:
            value = getattr(self, name)
            texts = value if isinstance(value, list) else [value]
            if any(isinstance(text, str) and _has_control(text) for text in texts):
                raise ValueError(f"{name} has a control character")
        return self

    def predicates(self) -> tuple[str, ...]:
        """The names of the predicates of the filters that are set, in field order (tags: by tags_mode;
        place: by its number of names)."""
        return tuple(self._predicate(name) for name in FILTER_FIELDS if _is_set(getattr(self, name)))

    def _predicate(self, name: str) -> str:
        if name == "tags":
            return f"tags_{self.tags_mode}"
        if name == "place" and self.place is not None:
            return place_filter(self.place)[0]
        return name

    def parameters(self) -> dict[str, Any]:
        """The SQL parameters of the predicates, named as the fields (near, bbox, place: `near_*`...)."""
        values = {
            name: getattr(self, name) for name in FILTER_FIELDS if name not in ("near", "bbox", "place")
        }
        if self.camera is not None:
            values["camera"] = " ".join(self.camera.lower().split())
        return {
            **values,
            **(place_filter(self.place)[1] if self.place is not None else {}),
            **(self.near.parameters() if self.near else {}),
            **(self.bbox.parameters() if self.bbox else {}),
        }


# Fields that are filters (the others modify one).
FILTER_FIELDS = tuple(name for name in SearchFilters.model_fields if name != "tags_mode")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def place_names(text: str) -> list[str]:
    """The comma-separated names of a place filter, spaces collapsed."""
    return [" ".join(part.split()) for part in text.split(",")]


# A place filter's predicate and parameters by its number of names (images/filters.py): one name matches
# any field; "city, x" (a place facet's value) and "city, region, country" go field by field.
_PLACE_FORMS = {
    1: ("place_any", ("place_name",)),
    2: ("place_city_in", ("place_city", "place_name")),
    3: ("place_full", ("place_city", "place_region", "place_country")),
}


def place_filter(place: str) -> tuple[str, dict[str, str]]:
    """A place filter's predicate and its parameters."""
    names = place_names(place)
    predicate, parameters = _PLACE_FORMS[len(names)]
    return predicate, dict(zip(parameters, names, strict=True))


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
        default="relevance",
        description="order of the relevant set: by score, by upload time (newest/oldest), or by the date "
        "taken (taken_newest/taken_oldest: EXIF wall clock, images without one last)",
    )
    facets: Facets = Field(default=None, description="counts over the relevant set, top 20 values each")
    diversity: float = Field(
        default=0.0, ge=0.0, le=1.0, description="re-rank by maximal marginal relevance (0 = off, 1 = most)"
    )
    collapse: Collapse | None = Field(
        default=None, description='"duplicates": one result per group of near-identical images'
    )
    parse: bool = Field(
        default=True,
        description='take dates and cameras written in the query as filters ("beach 2023", "canon eos '
        "portraits\"); the response's `interpreted` says what was taken. false: the text as written",
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
    taken_at: datetime | None = Field(
        default=None, description="when it was taken (EXIF): with its UTC offset, else wall clock"
    )
    camera: str | None = Field(default=None, description="camera make and model (EXIF)")
    place: Place | None = Field(default=None, description="the town it was taken in or near")
    auto_tags: list[str] = Field(default_factory=list, description="labels the model gives it (zero-shot)")
    duplicates: int | None = Field(
        default=None, description='with collapse: "duplicates", how many near-identical images it stands for'
    )
    explain: Explain | None = None


class Interpreted(BaseModel):
    """What the query was understood to say (`parse`, docs/search.md "Query understanding")."""

    taken_after: datetime | None = Field(description="wall-clock, as the taken_after filter")
    taken_before: datetime | None
    camera: str | None
    remaining_text: str = Field(description="what was searched for as text")


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
    interpreted: Interpreted | None = Field(
        default=None,
        description="when dates or a camera written in the query became filters (POST /search, parse)",
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
