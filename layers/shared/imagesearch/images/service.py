"""The images API's behaviour: validate, store, dedupe, list, update, delete. Handlers stay thin."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from uuid import UUID

from PIL import Image

from imagesearch.auth.tenant import Tenant
from imagesearch.db import Database
from imagesearch.errors import (
    ImageRejected,
    InvalidRequest,
    NotFound,
    ObjectNotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from imagesearch.images import keys, repository
from imagesearch.images.repository import ImageRecord
from imagesearch.images.schemas import (
    UPLOAD_CONTENT_TYPES,
    ImageList,
    ImagePublic,
    ImageUpdate,
    UploadCreate,
    UploadPublic,
    clean_description,
    clean_filename,
    clean_tags,
    clean_title,
)
from imagesearch.imaging import open_image, sniff_format
from imagesearch.logs import logger
from imagesearch.storage import ObjectStorage
from imagesearch.storage.urls import UrlCache

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    content_type: str
    width: int
    height: int
    sha256: str
    size: int


def decode_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Validate untrusted bytes: within the size limit, a supported type by its bytes, fully decodable."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the file is {len(data)} bytes; the limit is {max_bytes}")
    image = open_image(data, max_pixels=max_pixels)
    fmt = sniff_format(data)
    assert fmt is not None  # open_image refused anything else
    return DecodedImage(
        image=image,
        content_type=CONTENT_TYPES[fmt],
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


class ImageService:
    """Images of one deployment: records in PostgreSQL, bytes in object storage."""

    def __init__(
        self,
        db: Database,
        storage: ObjectStorage,
        *,
        max_upload_bytes: int,
        max_image_pixels: int,
        url_expiry_seconds: int,
        urls: UrlCache | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.url_expiry_seconds = url_expiry_seconds
        self.urls = urls or UrlCache(storage, expiry_seconds=url_expiry_seconds)

    # --- views ---------------------------------------------------------------------------------------------
    def public(self, record: ImageRecord) -> ImagePublic:
        """The API view of a record, with short-lived URLs for the original and the thumbnail."""
        url = self.urls.get(record.storage_key) if record.status != "pending" else None
        thumbnail_url = None
        if record.status == "ready":
            thumbnail_url = self.urls.get(keys.thumbnail_key(record.tenant_id, record.id))
        return ImagePublic(
            id=record.id,
            status=record.status,  # type: ignore[arg-type]
            error=record.error,
            title=record.title,
            description=record.description,
            tags=record.tags,
            filename=record.filename,
            content_type=record.content_type,
            size=record.size,
            width=record.width,
            height=record.height,
            sha256=record.sha256,
            created_at=record.created_at,
            updated_at=record.updated_at,
            url=url,
            thumbnail_url=thumbnail_url,
        )

    # --- uploads -------------------------------------------------------------------------------------------
    def upload(
        self,
        tenant: Tenant,
        data: bytes,
        *,
        filename: str | None,
        title: str | None,
        description: str | None,
        tags: list[str] | None,
    ) -> tuple[ImagePublic, bool]:
        """Store a small upload; (record, created). Same bytes again in this tenant -> the existing record."""
        title, description = clean_title(title), clean_description(description)
        filename, tag_list = clean_filename(filename), clean_tags(tags) or []
        decoded = decode_upload(data, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels)

        with self.db.connection() as conn:
            existing = repository.get_by_sha256(conn, tenant.id, decoded.sha256)
        if existing is not None:
            return self.public(existing), False

        image_id = uuid.uuid4()
        key = keys.original_key(tenant.id, image_id)
        with self.db.connection() as conn:
            record = repository.insert(
                conn,
                image_id=image_id,
                tenant_id=tenant.id,
                storage_key=key,
                filename=filename,
                title=title,
                description=description,
                tags=tag_list,
                content_type=decoded.content_type,
                size=decoded.size,
                width=decoded.width,
                height=decoded.height,
                sha256=decoded.sha256,
            )
            if record is None:  # the same bytes arrived concurrently: theirs won
                existing = repository.get_by_sha256(conn, tenant.id, decoded.sha256)
                assert existing is not None
                return self.public(existing), False
        # The row is committed before the object exists, so the object-created event always finds it.
        try:
            self.storage.put(
                key,
                data,
                content_type=decoded.content_type,
                metadata={"image-id": str(image_id), "sha256": decoded.sha256},
            )
        except ServiceUnavailable:
            with self.db.connection() as conn:
                repository.delete(conn, tenant.id, image_id)
            raise
        logger.info("image uploaded", extra={"image_id": str(image_id), "size": decoded.size})
        return self.public(record), True

    def create_upload(self, tenant: Tenant, body: UploadCreate) -> tuple[UploadPublic, bool]:
        """A pending record and a presigned PUT URL for the bytes, bound to their type and size; (upload,
        created). When `body.sha256` names bytes this tenant already has: the existing record, no URL."""
        content_type = body.content_type.split(";")[0].strip().lower()
        if content_type not in UPLOAD_CONTENT_TYPES:
            raise ImageRejected(
                f"content type {body.content_type!r} is not a supported image type",
                reason="unsupported_format",
            )
        if body.size > self.max_upload_bytes:
            raise PayloadTooLarge(f"{body.size} bytes is over the limit of {self.max_upload_bytes}")
        image_id = uuid.uuid4()
        key = keys.original_key(tenant.id, image_id)
        sha256 = body.sha256.lower() if body.sha256 else None
        with self.db.connection() as conn:
            record = repository.insert(
                conn,
                image_id=image_id,
                tenant_id=tenant.id,
                storage_key=key,
                filename=body.filename,
                title=body.title,
                description=body.description,
                tags=body.tags or [],
                content_type=content_type,
                size=body.size,
                sha256=sha256,  # as announced; the embed function replaces it with the real one
            )
            if record is None:
                assert sha256 is not None  # only a hash can clash
                existing = repository.get_by_sha256(conn, tenant.id, sha256)
                assert existing is not None
                public = self.public(existing)
                empty = UploadPublic(
                    id=existing.id, upload_url=None, method="PUT", headers={}, expires_at=None, image=public
                )
                return empty, False
        presigned = self.storage.presigned_put(
            key, content_type=content_type, size=body.size, expires_in=self.url_expiry_seconds
        )
        upload = UploadPublic(
            id=image_id,
            upload_url=presigned.url,
            method="PUT",
            headers=dict(presigned.headers),
            expires_at=presigned.expires_at,
            image=self.public(record),
        )
        return upload, True

    # --- reads and changes ---------------------------------------------------------------------------------
    def get(self, tenant: Tenant, image_id: UUID) -> ImagePublic:
        with self.db.connection() as conn:
            record = repository.get(conn, tenant.id, image_id)
        if record is None:
            raise NotFound(f"no image {image_id}")
        return self.public(record)

    def list(
        self,
        tenant: Tenant,
        *,
        status: str | None,
        tag: str | None,
        limit: int,
        cursor: str | None,
        sha256: str | None = None,
    ) -> ImageList:
        after = repository.decode_cursor(cursor) if cursor else None
        tags = clean_tags([tag]) if tag is not None else None
        with self.db.connection() as conn:
            records = repository.list_page(
                conn,
                tenant.id,
                status=status,
                tag=tags[0] if tags else None,
                limit=limit + 1,
                after=after,
                sha256=sha256.lower() if sha256 else None,
            )
        page = records[:limit]
        next_cursor = (
            repository.encode_cursor(page[-1].created_at, page[-1].id) if len(records) > limit else None
        )
        return ImageList(items=[self.public(r) for r in page], next_cursor=next_cursor)

    def update(self, tenant: Tenant, image_id: UUID, patch: ImageUpdate) -> ImagePublic:
        changes = patch.model_dump(exclude_unset=True)
        if "tags" in changes and changes["tags"] is None:
            raise InvalidRequest("tags cannot be null; send [] to remove every tag")
        with self.db.connection() as conn:
            record = repository.update_metadata(conn, tenant.id, image_id, changes)
        if record is None:
            raise NotFound(f"no image {image_id}")
        return self.public(record)

    def delete(self, tenant: Tenant, image_id: UUID) -> None:
        """Remove the record and its embeddings, then the object and its thumbnail."""
        with self.db.connection() as conn:
            record = repository.delete(conn, tenant.id, image_id)
        if record is None:
            raise NotFound(f"no image {image_id}")
        # The row goes first: a late event for the object then finds no record and drops the object. If
        # storage fails here, `imagesearch reconcile` removes the orphans later; the image is gone either way.
        for key in (record.storage_key, keys.thumbnail_key(record.tenant_id, record.id)):
            try:
                self.storage.delete(key)
            except ObjectNotFound:
                pass
            except ServiceUnavailable:
                logger.warning("object left for reconcile", extra={"key": key})
