"""Object-created event -> validated, thumbnailed, embedded, `ready` image (or `failed` with a reason).

Three phases, so one model run serves a whole batch while each message still succeeds or fails alone:
`prepare` (find the record, download, decode, thumbnail), `embed` (every prepared image of the batch in one
call per model) and `save` (one transaction per object: the vectors and `ready`, or `failed` with a reason;
raises for transient faults so that message is retried). Safe under at-least-once delivery: the same event
twice, events out of order, and objects deleted or replaced before their event all leave a correct state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import psycopg

from imagesearch.auth.tenant import tenant_exists
from imagesearch.db import Database, embeddings
from imagesearch.errors import ImageRejected, ObjectNotFound, PayloadTooLarge
from imagesearch.images import object_keys, repository
from imagesearch.images.repository import ImageRecord
from imagesearch.images.schemas import clean_description, clean_filename, clean_tags, clean_title
from imagesearch.images.thumbnails import THUMBNAIL_CONTENT_TYPE, make_thumbnail
from imagesearch.imaging import DecodedImage, decode_upload
from imagesearch.ingest.events import ObjectEvent
from imagesearch.logs import logger
from imagesearch.model.embedder import EmbeddingModel
from imagesearch.storage import ObjectStorage


class Outcome(StrEnum):
    READY = "ready"
    FAILED = "failed"  # permanently bad object: recorded, acknowledged, not retried
    SKIPPED = "skipped"  # nothing to do (duplicate, stale, not ours, deleted)


@dataclass
class Prepared:
    event: ObjectEvent
    key: str | None = None
    record: ImageRecord | None = None
    decoded: DecodedImage | None = None
    outcome: Outcome | None = None  # set when decided before saving
    note: str = ""
    transient: BaseException | None = None  # raised when saved: the message is retried
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def sequencer_order(sequencer: str | None) -> tuple[int, str]:
    """S3 sequencers are hex strings to compare after left-padding to equal length."""
    value = (sequencer or "").upper()
    return (len(value.lstrip("0")), value.lstrip("0"))


class Ingestor:
    """Processes object-created events against one database, store and set of models."""

    def __init__(
        self,
        db: Database,
        storage: ObjectStorage,
        models: Callable[[], Sequence[EmbeddingModel]],
        *,
        max_upload_bytes: int,
        max_image_pixels: int,
    ) -> None:
        self.db = db
        self.storage = storage
        self._models = models
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels

    # --- the whole pipeline --------------------------------------------------------------------------------
    def ingest(self, events: Sequence[ObjectEvent]) -> list[Outcome]:
        """Prepare, embed and save; raises the first transient fault after saving the rest."""
        return self.embed_and_save([self.prepare(event) for event in events])

    def embed_and_save(self, prepared: list[Prepared]) -> list[Outcome]:
        """Embed and save prepared items; raises the first transient fault after saving the rest."""
        outcomes: list[Outcome] = []
        first_fault: BaseException | None = None
        for item in self.embed(prepared):
            try:
                outcomes.append(self.save(item))
            except Exception as e:
                first_fault = first_fault or e
        if first_fault is not None:
            raise first_fault
        return outcomes

    # --- phase 1 -------------------------------------------------------------------------------------------
    def prepare(self, event: ObjectEvent) -> Prepared:
        return self._guarded(Prepared(event=event), None)

    def prepare_key(self, key: str, *, etag: str | None = None) -> Prepared:
        """Prepare the object at `key` of this store as if its event had arrived (reconcile)."""
        event = ObjectEvent(bucket="", key=key, size=None, etag=etag, sequencer=None, event_name="Reconcile")
        return self._guarded(Prepared(event=event), key)

    def _guarded(self, item: Prepared, key: str | None) -> Prepared:
        try:
            self._prepare(item, key)
        except ImageRejected as e:
            item.outcome, item.note = Outcome.FAILED, f"{e.reason}: {e.detail}"
        except Exception as e:  # database or storage down, or a bug: retry, then the dead-letter queue
            item.transient = e
        return item

    def _prepare(self, item: Prepared, key: str | None = None) -> None:
        event = item.event
        if key is None:
            key = self.storage.key_from_event(event.bucket, event.key)
        parsed = object_keys.parse_original_key(key) if key else None
        if key is None or parsed is None:
            item.outcome, item.note = Outcome.SKIPPED, "not an original under this store"
            return
        item.key = key
        with self.db.connection() as conn:
            record = repository.get_by_key(conn, key)
            if record is None and parsed.image_id is not None:
                # Our own naming, but no record: the image was deleted. Drop the late object.
                item.outcome, item.note = Outcome.SKIPPED, "record deleted"
                self._delete_quietly(key)
                return
            if record is None:
                record = self._record_for_foreign_object(conn, key, parsed.tenant_id, parsed.name)
                if record is None:
                    item.outcome, item.note = Outcome.SKIPPED, "unknown tenant"
                    return
            if record.status == "ready" and event.etag and record.object_etag == event.etag:
                item.outcome, item.note = Outcome.SKIPPED, "duplicate event"
                return
            if sequencer_order(event.sequencer) < sequencer_order(record.sequencer):
                item.outcome, item.note = Outcome.SKIPPED, "stale event"
                return
            repository.count_attempt(conn, record.id)
        item.record = record

        try:
            info = self.storage.head(key)
            if info.size > self.max_upload_bytes:
                raise ImageRejected(
                    f"the object is {info.size} bytes; the limit is {self.max_upload_bytes}",
                    reason="too_large",
                )
            data = self.storage.get(key)
        except ObjectNotFound:
            item.outcome, item.note = (
                Outcome.FAILED,
                "missing: the object was deleted before it was processed",
            )
            return
        try:
            item.decoded = decode_upload(
                data, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
            )
        except PayloadTooLarge as e:
            raise ImageRejected(e.detail, reason="too_large") from e
        self.storage.put(
            object_keys.thumbnail_key(record.tenant_id, record.id),
            make_thumbnail(item.decoded.image),
            content_type=THUMBNAIL_CONTENT_TYPE,
        )

    def _record_for_foreign_object(
        self, conn: psycopg.Connection, key: str, tenant_id: uuid.UUID, name: str
    ) -> ImageRecord | None:
        """A pending record for an object put under originals/<tenant>/ by another tool (its metadata)."""
        if not tenant_exists(conn, tenant_id):
            return None
        try:
            metadata = dict(self.storage.head(key).metadata)
        except ObjectNotFound:
            metadata = {}
        try:
            title, description = (
                clean_title(metadata.get("title")),
                clean_description(metadata.get("description")),
            )
            tags = clean_tags([metadata["tags"]] if metadata.get("tags") else []) or []
        except Exception:  # metadata we cannot use is dropped, the image still counts
            title, description, tags = None, None, []
        return repository.insert(
            conn,
            repository.NewImage(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                storage_key=key,
                filename=clean_filename(name),
                title=title,
                description=description,
                tags=tags,
                content_type=None,
                size=None,
            ),
        )

    # --- phase 2 -------------------------------------------------------------------------------------------
    def embed(self, prepared: list[Prepared]) -> list[Prepared]:
        """Embed every decoded image of the batch with each model, one call per model."""
        todo = [p for p in prepared if p.decoded is not None and p.outcome is None and p.transient is None]
        if not todo:
            return prepared
        try:
            for model in self._models():
                vectors = model.embed_images([p.decoded.image for p in todo if p.decoded is not None])
                for item, vector in zip(todo, vectors, strict=True):
                    item.vectors[model.model_id] = vector
        except ImageRejected as e:  # the model refused one image of the batch: find it alone
            if len(todo) == 1:
                todo[0].outcome, todo[0].note = Outcome.FAILED, f"{e.reason}: {e.detail}"
            else:
                for item in todo:
                    self.embed([item])
        except Exception as e:
            for item in todo:
                item.transient = e
        return prepared

    # --- phase 3 -------------------------------------------------------------------------------------------
    def save(self, item: Prepared) -> Outcome:
        """Write the outcome of one object; raises the transient fault met earlier, or a new one."""
        if item.transient is not None:
            raise item.transient
        if item.outcome is Outcome.SKIPPED:
            logger.info("event skipped", extra={"key": item.key or item.event.key, "why": item.note})
            return Outcome.SKIPPED
        record = item.record
        assert record is not None
        event = item.event
        with self.db.connection() as conn:
            current = repository.get_by_key(conn, record.storage_key, for_update=True)
            if current is None:
                self._delete_quietly(
                    record.storage_key, object_keys.thumbnail_key(record.tenant_id, record.id)
                )
                return Outcome.SKIPPED
            if sequencer_order(event.sequencer) < sequencer_order(current.sequencer):
                return Outcome.SKIPPED  # a newer version was processed while we worked
            if item.outcome is Outcome.FAILED:
                repository.mark_failed(
                    conn, record.id, item.note, object_etag=event.etag, sequencer=event.sequencer
                )
                logger.warning("image failed", extra={"image_id": str(record.id), "reason": item.note})
                return Outcome.FAILED
            decoded = item.decoded
            assert decoded is not None
            duplicate = repository.get_by_sha256(conn, record.tenant_id, decoded.sha256)
            if duplicate is not None and duplicate.id != record.id:
                note = f"duplicate: the same bytes as image {duplicate.id}"
                repository.mark_failed(
                    conn, record.id, note, object_etag=event.etag, sequencer=event.sequencer
                )
                return Outcome.FAILED
            for model_id, vector in item.vectors.items():
                embeddings.upsert(conn, image_id=record.id, model_id=model_id, embedding=vector)
            repository.mark_ready(
                conn,
                record.id,
                content_type=decoded.content_type,
                size=decoded.size,
                width=decoded.width,
                height=decoded.height,
                sha256=decoded.sha256,
                object_etag=event.etag,
                sequencer=event.sequencer,
            )
        logger.info("image ready", extra={"image_id": str(record.id), "models": sorted(item.vectors)})
        return Outcome.READY

    def _delete_quietly(self, *object_keys: str) -> None:
        for key in object_keys:
            try:
                self.storage.delete(key)
            except Exception:  # best effort: reconcile removes what is left
                logger.warning("could not delete object", extra={"key": key})
