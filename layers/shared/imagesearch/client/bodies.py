"""Request bodies the client sends, as typed dictionaries: the keyword arguments of the client's methods.

Only the keys a caller gives are sent, so the server's defaults apply to the rest. tests/test_openapi.py
checks every key against the committed openapi.json.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal, Required, get_type_hints
from uuid import UUID

from pydantic import TypeAdapter
from typing_extensions import TypedDict

SearchMode = Literal["hybrid", "vector", "keyword"]
Cutoff = Literal["auto", "none"]
Sort = Literal["relevance", "newest", "oldest", "taken_newest", "taken_oldest"]
# GET /images: by upload time, or by the date taken (images without one last).
ImageSort = Literal["newest", "oldest", "taken_newest", "taken_oldest"]
Facet = Literal["tags", "year", "month", "place", "auto_tags"]
WebhookEvent = Literal["image.ready", "image.failed", "image.deleted"]


class Near(TypedDict):
    """Within radius_km of a point (decimal degrees)."""

    lat: float
    lon: float
    radius_km: float


class BoundingBox(TypedDict):
    """A latitude/longitude box; min_lon > max_lon crosses the 180th meridian."""

    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float


class Filters(TypedDict, total=False):
    """Narrow a search: tags (any or all of them), a creation-time range (with a time zone), and by EXIF:
    a taken-time range (wall-clock), camera, a radius around a point, a box."""

    tags: list[str]
    tags_mode: Literal["any", "all"]
    auto_tags: list[str]  # labels the model gave (any of them)
    created_after: datetime
    created_before: datetime
    taken_after: datetime  # wall-clock, without a time zone
    taken_before: datetime
    camera: str
    near: Near
    bbox: BoundingBox
    place: str  # "Lisbon", "Lisbon, Portugal" (a place facet's value), "Springfield, Illinois, US"


class Example(TypedDict, total=False):
    """A recommendation example: a stored image or a text, with a weight (default 1)."""

    image_id: UUID
    text: str
    weight: float


class SearchOptions(TypedDict, total=False):
    """POST /search, beside the query text (docs/search.md)."""

    image_id: UUID
    mode: SearchMode
    limit: int
    cursor: str
    offset: int
    filters: Filters
    min_score: float
    explain: bool
    cutoff: Cutoff
    sort: Sort
    facets: list[Facet]
    diversity: float
    collapse: Literal["duplicates"]
    parse: bool


class SearchBody(SearchOptions, total=False):
    query: str


class RecommendOptions(TypedDict, total=False):
    """POST /recommend, beside the positive examples."""

    negative: list[Example]
    strategy: Literal["best_score", "average"]
    limit: int
    cursor: str
    filters: Filters
    min_score: float
    cutoff: Cutoff
    explain: bool


class RecommendBody(RecommendOptions, total=False):
    positive: Required[list[Example]]


class ImageChanges(TypedDict, total=False):
    """PATCH /images/{id}: only the keys given change; None clears title or description."""

    title: str | None
    description: str | None
    tags: list[str] | None


class UploadAnnouncement(TypedDict, total=False):
    """POST /uploads: a direct upload of `size` bytes, to PUT to the URL it answers with."""

    filename: Required[str]
    content_type: Required[str]
    size: Required[int]
    sha256: str
    title: str
    description: str
    tags: list[str]


class WebhookCreate(TypedDict, total=False):
    url: Required[str]
    events: Required[list[WebhookEvent]]
    description: str


# The component of openapi.json each body stands for (tests/test_openapi.py compares them).
REQUEST_SCHEMAS: dict[Any, str] = {
    Filters: "SearchFilters",
    Example: "Example",
    SearchBody: "SearchRequest",
    RecommendBody: "RecommendRequest",
    ImageChanges: "ImageUpdate",
    UploadAnnouncement: "UploadCreate",
    WebhookCreate: "WebhookCreate",
}


@cache
def _adapter(body_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(body_type)


def to_json(body_type: Any, body: object) -> Any:
    """`body` checked against its type and made JSON-ready (UUIDs and datetimes as strings)."""
    adapter = _adapter(body_type)
    return adapter.dump_python(adapter.validate_python(body), mode="json")


def filter_query(filters: Filters) -> dict[str, Any]:
    """Search filters as GET /images' query parameters: an object (near, bbox) as its values in its
    declared order, comma-separated ("48.85,2.29,5"); a list as the parameter repeated."""
    kinds = get_type_hints(Filters)
    return {
        name: ",".join(str(value[key]) for key in get_type_hints(kinds[name]))
        if isinstance(value, dict)
        else value
        for name, value in to_json(Filters, filters).items()
    }
