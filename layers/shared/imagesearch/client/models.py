"""The API's shapes as the client reads and sends them.

These are the client's own models, not the server's: a client may talk to an older or newer server, so
responses allow fields it does not know (`extra="allow"`) and open sets of values (statuses, modes) are
plain strings. tests/test_openapi.py checks every field against the committed openapi.json.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Response(BaseModel):
    """A response body: fields a newer server adds are kept, not refused."""

    model_config = ConfigDict(extra="allow")


class Problem(Response):
    """RFC 9457 problem details, as every error response carries them."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    reason: str | None = None
    errors: list[dict[str, Any]] | None = None


class Health(Response):
    status: str
    database: str
    model: str | None
    check: str = "deep"


class Location(Response):
    """Where a photo was taken (EXIF GPS), in decimal degrees."""

    lat: float
    lon: float


class Place(Response):
    """The town a photo was taken in or near (offline gazetteer)."""

    city: str | None = None
    region: str | None = None
    country: str | None = None
    country_code: str | None = None


class Image(Response):
    """An image record; `url` and `thumbnail_url` are short-lived."""

    id: UUID
    status: str  # pending, ready or failed
    error: str | None
    title: str | None
    description: str | None
    tags: list[str]
    filename: str | None
    content_type: str | None
    size: int | None
    width: int | None
    height: int | None
    sha256: str | None
    created_at: datetime
    updated_at: datetime
    # EXIF; absent from servers older than these fields. taken_at is naive when no offset was recorded.
    taken_at: datetime | None = None
    camera: str | None = None
    lens: str | None = None
    location: Location | None = None
    # Enrichment; absent from servers older than these fields.
    place: Place | None = None
    auto_tags: list[str] = []
    text: str | None = None
    duplicate_group: UUID | None = None
    url: str | None
    thumbnail_url: str | None


class ImagePage(Response):
    items: list[Image]
    next_cursor: str | None


class DuplicateImage(Image):
    """A member of a near-duplicate group, and how near it is to the group's first image."""

    distance: int  # pHash bits that differ
    similarity: float | None = None  # cosine of the active model's vectors


class DuplicateGroup(Response):
    """Near-duplicate images (GET /duplicates): `group` is its first image's id; members oldest first."""

    group: UUID
    size: int
    images: list[DuplicateImage]


class DuplicatePage(Response):
    items: list[DuplicateGroup]
    next_cursor: str | None


class UploadTicket(Response):
    """POST /uploads: where to PUT the bytes (no URL when the API already has them)."""

    id: UUID
    upload_url: str | None
    method: str
    headers: dict[str, str]
    expires_at: datetime | None
    image: Image


class Explain(Response):
    vector_rank: int | None
    vector_distance: float | None
    keyword_rank: int | None
    keyword_score: float | None


class CutoffExplain(Response):
    branch: str
    kept: int
    candidates: int
    threshold: float | None
    gap: float | None
    mean_gap: float | None
    reason: str


class FacetCount(Response):
    value: str
    count: int


class SearchResult(Response):
    id: UUID
    score: float
    title: str | None
    filename: str | None
    tags: list[str]
    created_at: datetime
    url: str | None
    thumbnail_url: str | None
    taken_at: datetime | None = None  # naive when no offset was recorded
    camera: str | None = None
    place: Place | None = None
    auto_tags: list[str] = []
    duplicates: int | None = None
    explain: Explain | None = None


class Interpreted(Response):
    """The dates and camera a query was understood to say, and the text left to search."""

    taken_after: datetime | None
    taken_before: datetime | None
    camera: str | None
    remaining_text: str


class SearchResponse(Response):
    """One page of results of a search, a recommendation or a similar-images query."""

    results: list[SearchResult]
    next_cursor: str | None
    took_ms: float
    model: str
    mode: str
    facets: dict[str, list[FacetCount]] | None = None
    cutoff: list[CutoffExplain] | None = None
    interpreted: Interpreted | None = None


class Webhook(Response):
    """A webhook subscription."""

    id: UUID
    url: str
    events: list[str]
    description: str | None = None
    created_at: datetime


class WebhookCreated(Webhook):
    """The answer that created a webhook: the only one with its signing secret (for verify_webhook)."""

    secret: str


class WebhookList(Response):
    items: list[Webhook]


class WebhookDelivery(Response):
    id: UUID
    event_id: UUID
    event_type: str
    status: str  # pending, delivered or failed
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(Response):
    items: list[WebhookDelivery]
    next_cursor: str | None


# The component of openapi.json each response model stands for (tests/test_openapi.py compares them).
RESPONSE_SCHEMAS: dict[type[Response], str] = {
    Problem: "Problem",
    Health: "Health",
    Image: "ImagePublic",
    ImagePage: "ImageList",
    UploadTicket: "UploadPublic",
    Explain: "Explain",
    CutoffExplain: "CutoffExplain",
    FacetCount: "FacetCount",
    SearchResult: "SearchResult",
    SearchResponse: "SearchResponse",
    Webhook: "WebhookPublic",
    WebhookCreated: "WebhookCreated",
    WebhookList: "WebhookList",
    WebhookDelivery: "DeliveryPublic",
    DeliveryPage: "DeliveryList",
}
