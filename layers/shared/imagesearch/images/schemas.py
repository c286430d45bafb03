"""The images API's request and response shapes, and the rules for user-supplied text."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from imagesearch.errors import InvalidRequest
from imagesearch.imaging import CONTENT_TYPES

ImageStatus = Literal["pending", "ready", "failed"]
# GET /images: by upload time, or by the date taken (EXIF wall clock; images without one last).
ImageSort = Literal["newest", "oldest", "taken_newest", "taken_oldest"]

MAX_TITLE = 500
MAX_DESCRIPTION = 5000
MAX_FILENAME = 255
MAX_TAGS = 50
MAX_TAG = 64

# What a client may announce for a direct upload; the bytes decide in the end (sniffed on arrival).
UPLOAD_CONTENT_TYPES = frozenset(CONTENT_TYPES.values())


def strip_control_characters(value: str) -> str:
    """NFC-normalise and drop control and format characters (NUL, bidi overrides...), keeping \\n and \\t."""
    text = unicodedata.normalize("NFC", value)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def _clean_text(value: str, limit: int, name: str) -> str:
    """Control characters out, trimmed, at most `limit` characters."""
    text = strip_control_characters(value).strip()
    if len(text) > limit:
        raise InvalidRequest(f"{name} is longer than {limit} characters")
    return text


def clean_title(value: str | None) -> str | None:
    return (_clean_text(value, MAX_TITLE, "title") or None) if value is not None else None


def clean_description(value: str | None) -> str | None:
    return (_clean_text(value, MAX_DESCRIPTION, "description") or None) if value is not None else None


def clean_filename(value: str | None) -> str | None:
    """The last path segment only ("../../etc/passwd" -> "passwd"), without control characters."""
    if value is None:
        return None
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(_clean_text(name, 10 * MAX_FILENAME, "filename").split())
    return name[:MAX_FILENAME] or None


def clean_tags(values: list[str] | None) -> list[str] | None:
    """Tags are case-insensitive labels: lowercased, trimmed, de-duplicated in order; commas split."""
    if values is None:
        return None
    tags: list[str] = []
    for value in values:
        for part in value.split(","):
            tag = " ".join(_clean_text(part, 10 * MAX_TAG, "tag").lower().split())
            if not tag:
                continue
            if len(tag) > MAX_TAG:
                raise InvalidRequest(f"tag {tag[:20]!r}... is longer than {MAX_TAG} characters")
            if tag not in tags:
                tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"at most {MAX_TAGS} tags")
    return tags


def _pydantic(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Adapt a cleaner that raises InvalidRequest to pydantic's ValueError, for request bodies."""

    def wrapper(value: Any) -> Any:
        try:
            return fn(value)
        except InvalidRequest as e:
            raise ValueError(e.detail) from None

    return wrapper


Title = Annotated[str | None, AfterValidator(_pydantic(clean_title))]
Description = Annotated[str | None, AfterValidator(_pydantic(clean_description))]
Tags = Annotated[list[str] | None, AfterValidator(_pydantic(clean_tags))]


def _required_filename(value: str) -> str:
    name = clean_filename(value)
    if not name:
        raise InvalidRequest("filename is empty")
    return name


Filename = Annotated[str, AfterValidator(_pydantic(_required_filename))]


class ImageFields(BaseModel):
    """What a stored image record and the API's view of it share."""

    id: UUID
    status: ImageStatus
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


class PhotoFields(BaseModel):
    """What ingestion read from the original's EXIF, as stored (imagesearch.exif; migration 0007)."""

    taken_at: datetime | None = None  # only when the offset was recorded
    taken_at_local: datetime | None = None  # naive wall-clock time as written
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    exif_read_at: datetime | None = None  # None: never read (`imagesearch enrich --missing`)


class EnrichedFields(BaseModel):
    """What enrichment derived from the image, as stored (migration 0008): the place its location is in,
    its perceptual hash and near-duplicate group, labels from the model, and the text written in it."""

    place_city: str | None = None
    place_region: str | None = None
    place_country: str | None = None
    place_country_code: str | None = None
    place_at: datetime | None = None  # None: never looked up
    phash: int | None = None  # 64-bit pHash as a signed bigint; None: not computed yet
    duplicate_group: UUID | None = None  # id of the first image of its near-duplicate group
    auto_tags: list[str] = Field(default_factory=list)
    auto_tags_model: str | None = None  # the model and vocabulary they came from; None: never labelled
    ocr_text: str | None = None
    ocr_at: datetime | None = None  # None: never read
    enrich_failures: dict[str, str] = Field(default_factory=dict)  # step -> why it failed on this image


class Place(BaseModel):
    """The nearest town to where a photo was taken (offline GeoNames gazetteer)."""

    city: str | None = None
    region: str | None = None
    country: str | None = None
    country_code: str | None = Field(default=None, description="ISO 3166-1 alpha-2")


def place_of(
    city: str | None, region: str | None, country: str | None, country_code: str | None
) -> Place | None:
    """The stored place_* columns as the API shows them; None when nothing was found."""
    if city is None and country is None:
        return None
    return Place(city=city, region=region, country=country, country_code=country_code)


class Location(BaseModel):
    """Where a photo was taken (EXIF GPS), in decimal degrees (WGS 84)."""

    lat: float
    lon: float


def taken_at_shown(local: datetime | None, instant: datetime | None) -> datetime | None:
    """The time as the camera recorded it (`taken_at_local`): with its own UTC offset when the instant
    (`taken_at`) is known, else naive wall-clock."""
    if local is None or instant is None:
        return local
    offset = local - instant.astimezone(UTC).replace(tzinfo=None)
    return local.replace(tzinfo=timezone(offset))


def camera_name(make: str | None, model: str | None) -> str | None:
    """Make and model ("Apple iPhone 15"), the make once when the model repeats it ("Canon EOS R5")."""
    if make and model and model.lower().startswith(make.lower()):
        return model
    return " ".join(part for part in (make, model) if part) or None


class ImagePublic(ImageFields):
    """An image record as the API shows it."""

    taken_at: datetime | None = Field(
        default=None,
        description="when the photo was taken (EXIF DateTimeOriginal): with its UTC offset when the camera "
        "recorded one, else the wall-clock time as written, without an offset; never the upload time",
    )
    camera: str | None = Field(default=None, description="camera make and model (EXIF)")
    lens: str | None = Field(default=None, description="lens model (EXIF)")
    location: Location | None = Field(
        default=None, description="where it was taken (EXIF GPS), unless the service does not store locations"
    )
    place: Place | None = Field(default=None, description="the town it was taken in or near (its location)")
    auto_tags: list[str] = Field(
        default_factory=list, description="labels the model gives it (zero-shot), apart from your own tags"
    )
    text: str | None = Field(default=None, description="text recognised in the image (OCR), when any")
    duplicate_group: UUID | None = Field(
        default=None, description="its near-duplicate group (GET /duplicates), when it has near-duplicates"
    )
    url: str | None = Field(description="short-lived URL of the original")
    thumbnail_url: str | None = Field(description="short-lived URL of the 256 px WebP thumbnail, once ready")

    @classmethod
    def from_record(cls, record: ImageFields, *, url: str | None, thumbnail_url: str | None) -> ImagePublic:
        """The shared fields of a stored record (its own are left out), what its EXIF said, and its URLs."""
        shared = {name: getattr(record, name) for name in ImageFields.model_fields}
        photo = record if isinstance(record, PhotoFields) else PhotoFields()
        enriched = record if isinstance(record, EnrichedFields) else EnrichedFields()
        lat, lon = photo.latitude, photo.longitude
        return cls.model_construct(
            **shared,
            taken_at=taken_at_shown(photo.taken_at_local, photo.taken_at),
            camera=camera_name(photo.camera_make, photo.camera_model),
            lens=photo.lens,
            location=Location(lat=lat, lon=lon) if lat is not None and lon is not None else None,
            place=place_of(
                enriched.place_city,
                enriched.place_region,
                enriched.place_country,
                enriched.place_country_code,
            ),
            auto_tags=enriched.auto_tags,
            text=enriched.ocr_text or None,
            duplicate_group=enriched.duplicate_group,
            url=url,
            thumbnail_url=thumbnail_url,
        )


class ImageList(BaseModel):
    items: list[ImagePublic]
    next_cursor: str | None


class ImageUpdate(BaseModel):
    """PATCH body: only the fields present change; null clears title or description."""

    model_config = ConfigDict(extra="forbid")

    title: Title = None
    description: Description = None
    tags: Tags = None


class UploadCreate(BaseModel):
    """POST /uploads body: announce a direct upload."""

    model_config = ConfigDict(extra="forbid")

    filename: Filename
    content_type: str
    size: int = Field(gt=0)
    sha256: str | None = Field(
        default=None,
        pattern="^[0-9a-fA-F]{64}$",
        description="the bytes' SHA-256, if known: an upload this tenant already has is answered with 200 "
        "and no URL; the hash is checked when the bytes arrive",
    )
    title: Title = None
    description: Description = None
    tags: Tags = None


class UploadPublic(BaseModel):
    """Where and how to PUT the bytes; the record exists already, as pending.

    With status 200 the tenant already has these bytes: no URL, and `image` is the existing record.
    """

    id: UUID
    upload_url: str | None
    method: Literal["PUT"]
    headers: dict[str, str]
    expires_at: datetime | None
    image: ImagePublic


class DuplicateImage(ImagePublic):
    """A member of a near-duplicate group, and how near it is to the group's first image."""

    distance: int = Field(description="perceptual-hash (pHash) bits that differ from the group's first image")
    similarity: float | None = Field(
        description="cosine similarity of the active model's vectors to the group's first image"
    )


class DuplicateGroup(BaseModel):
    """Near-duplicates of one tenant: resized, recompressed or lightly cropped copies, burst shots."""

    group: UUID = Field(description="the group's id: the id of its first image (which may be deleted since)")
    size: int = Field(description="how many ready images it has")
    images: list[DuplicateImage] = Field(description="oldest first; the first is the one distances are to")


class DuplicateList(BaseModel):
    items: list[DuplicateGroup]
    next_cursor: str | None
