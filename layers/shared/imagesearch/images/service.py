"""The images API's behaviour: validate, store, dedupe, list, update, delete. Handlers stay thin."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

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
from imagesearch.images import duplicates, object_keys, repository
from imagesearch.images.duplicates import Member
from imagesearch.images.filters import ImageFilter
from imagesearch.images.repository import ImageRecord
from imagesearch.images.schemas import (
    UPLOAD_CONTENT_TYPES,
    DuplicateGroup,
    DuplicateImage,
    DuplicateList,
    ImageList,
    ImagePublic,
    ImageSort,
    ImageUpdate,
    UploadCreate,
    UploadPublic,
    clean_description,
    clean_filename,
    clean_tags,
    clean_title,
)
from imagesearch.imaging import decode_upload
from imagesearch.logs import logger
from imagesearch.storage import ObjectStorage
from imagesearch.storage.urls import UrlCache
from imagesearch.webhooks import events, outbox
from imagesearch.webhooks.publisher import EventPublisher, NoPublisher


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
        publisher: EventPublisher | None = None,
    ) -> None:
        self.db = db
        self.publisher = publisher or NoPublisher()
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
            thumbnail_url = self.urls.get(object_keys.thumbnail_key(record.tenant_id, record.id))
        return ImagePublic.from_record(record, url=url, thumbnail_url=thumbnail_url)

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
        record, created = self._insert(
            tenant,
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
        if not created:
            return self.public(record), False
        # The row is committed before the object exists, so the object-created event always finds it.
        try:
            self.storage.put(
                record.storage_key,
                data,
                content_type=decoded.content_type,
                metadata={"image-id": str(record.id), "sha256": decoded.sha256},
            )
        except ServiceUnavailable:
            # The put may have landed all the same. The tombstone the delete leaves tells the object's
            # event (or reconcile) to remove it: the client was told the upload failed.
            with self.db.connection() as conn:
                repository.delete(conn, tenant.id, record.id)
            raise
        logger.info("image uploaded", extra={"image_id": str(record.id), "size": decoded.size})
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
        record, created = self._insert(
            tenant,
            filename=body.filename,
            title=body.title,
            description=body.description,
            tags=body.tags or [],
            content_type=content_type,
            size=body.size,
            sha256=body.sha256.lower() if body.sha256 else None,  # as announced; checked on arrival
        )
        if not created:
            empty = UploadPublic(
                id=record.id,
                upload_url=None,
                method="PUT",
                headers={},
                expires_at=None,
                image=self.public(record),
            )
            return empty, False
        presigned = self.storage.presigned_put(
            record.storage_key, content_type=content_type, size=body.size, expires_in=self.url_expiry_seconds
        )
        upload = UploadPublic(
            id=record.id,
            upload_url=presigned.url,
            method="PUT",
            headers=dict(presigned.headers),
            expires_at=presigned.expires_at,
            image=self.public(record),
        )
        return upload, True

    def _insert(self, tenant: Tenant, **fields: Any) -> tuple[ImageRecord, bool]:
        """A new pending record under a new id; (record, True). When the tenant already has the bytes of
        `fields["sha256"]`: (that record, False)."""
        image_id = uuid.uuid4()
        new = repository.NewImage(
            id=image_id,
            tenant_id=tenant.id,
            storage_key=object_keys.original_key(tenant.id, image_id),
            **fields,
        )
        with self.db.connection() as conn:
            record = repository.insert(conn, new)
            if record is not None:
                return record, True
            # Only the bytes' hash can clash (maybe with an upload of the same bytes a moment ago).
            existing = repository.get_by_sha256(conn, tenant.id, fields["sha256"])
        assert existing is not None
        return existing, False

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
        filters: ImageFilter | None = None,
        sort: ImageSort = "newest",
    ) -> ImageList:
        """One page of the tenant's images in `sort` order, narrowed by `filters` (POST /search's)."""
        after = repository.decode_cursor(cursor, sort) if cursor else None
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
                filters=filters,
                sort=sort,
            )
        page = records[:limit]
        last = page[-1] if len(records) > limit else None
        next_cursor = (
            repository.encode_cursor(sort, repository.sort_key(last, sort), last.id) if last else None
        )
        return ImageList(items=[self.public(r) for r in page], next_cursor=next_cursor)

    def duplicates(self, tenant: Tenant, *, limit: int, cursor: str | None) -> DuplicateList:
        """Near-duplicate groups, newest first by their newest member, one page at a time."""
        after = duplicates.decode_cursor(cursor) if cursor else None
        with self.db.connection() as conn:
            rows = duplicates.list_groups(conn, tenant.id, limit=limit + 1, after=after)
            page = rows[:limit]
            members = duplicates.members(conn, tenant.id, [row.group for row in page])
        next_cursor = duplicates.encode_cursor(page[-1].newest, page[-1].group) if len(rows) > limit else None
        items = [
            DuplicateGroup(group=row.group, size=len(found), images=[self._duplicate(m) for m in found])
            for row in page
            if len(found := members.get(row.group, [])) > 1  # members deleted meanwhile
        ]
        return DuplicateList(items=items, next_cursor=next_cursor)

    def _duplicate(self, member: Member) -> DuplicateImage:
        public = self.public(member.record)
        shown = {name: getattr(public, name) for name in public.model_fields_set}
        return DuplicateImage.model_construct(**shown, distance=member.distance, similarity=member.similarity)

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
        """Remove the record and its embeddings (leaving a tombstone), then the object and its thumbnail."""
        with self.db.connection() as conn:
            record = repository.delete(conn, tenant.id, image_id)
            if record is None:
                raise NotFound(f"no image {image_id}")
            # The event's outbox rows commit with the deletion, or neither does.
            event = outbox.record(conn, events.deleted(tenant.id, image_id))
        self.publisher.publish([event])
        # The row goes first, its tombstone with it: a late event for the object then finds the tombstone
        # and drops the object. If storage fails here, `imagesearch reconcile` removes the objects later
        # (for the same reason); the image is gone either way.
        for key in (record.storage_key, object_keys.thumbnail_key(record.tenant_id, record.id)):
            try:
                self.storage.delete(key)
            except ObjectNotFound:
                pass
            except ServiceUnavailable:
                logger.warning("object left for reconcile", extra={"key": key})
