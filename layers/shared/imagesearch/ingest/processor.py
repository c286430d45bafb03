"""Object-created event -> validated, thumbnailed, embedded, `ready` image (or `failed` with a reason).

Three phases, so one model run serves a whole batch while each message still succeeds or fails alone:
`prepare` (find the record, download, decode, thumbnail), `embed` (every prepared image of the batch in one
call per model) and `save` (one transaction per object: the vectors and `ready`, or `failed` with a reason;
raises for transient faults so that message is retried). Safe under at-least-once delivery: the same event
twice, events out of order, and objects deleted or replaced before their event all leave a correct state.

An original without a record is deleted only when its image is known to be deleted, and otherwise gets
a record (`strays.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
import psycopg

from imagesearch.db import Database, embeddings
from imagesearch.db import model_records as models
from imagesearch.enrichment.phash import phash
from imagesearch.errors import ImageRejected, ObjectNotFound, PayloadTooLarge
from imagesearch.exif import ExifData, read_exif
from imagesearch.images import object_keys, repository
from imagesearch.images.repository import ImageRecord
from imagesearch.images.thumbnails import THUMBNAIL_CONTENT_TYPE, THUMBNAIL_SIZE, make_thumbnail
from imagesearch.imaging import DecodedImage, decode_upload
from imagesearch.ingest import duplicates, places, strays
from imagesearch.ingest.events import ObjectEvent
from imagesearch.ingest.labels import NOT_LABELLED, AutoTags, Labeller
from imagesearch.ingest.strays import Stray
from imagesearch.logs import logger
from imagesearch.model.embedder import EmbeddingModel
from imagesearch.observability import IMAGES_EMBEDDED, IMAGES_FAILED, metrics
from imagesearch.storage import ObjectStorage
from imagesearch.webhooks import events, outbox
from imagesearch.webhooks.events import ImageEvent
from imagesearch.webhooks.publisher import EventPublisher, NoPublisher


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
    exif: ExifData = field(default_factory=ExifData)
    outcome: Outcome | None = None  # set when decided before saving
    note: str = ""
    transient: BaseException | None = None  # raised when saved: the message is retried
    adopted: bool = False  # the record was made here for an id-named original that had none
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)  # models wanted but not loadable here
    announcement: ImageEvent | None = None  # recorded with the saved outcome; published after its commit
    # Enrichment steps that failed on this image (step -> why): it is saved all the same, searchable by its
    # embedding, and the failures are recorded with it (the back-fill tries those steps again).
    enrich_failures: dict[str, str] = field(default_factory=dict)
    auto_tags: AutoTags | None = None  # labels from the active model's vector (ingest/labels.py)
    place: places.PlaceLookup | None = None  # None: not looked up (no location, or the lookup failed)
    phash: int | None = None  # of the decoded image; its group is assigned when saved (ingest/duplicates.py)


def enrichment_failed(item: Prepared, step: str, error: Exception) -> None:
    """Note that an enrichment step failed on an item: logged, recorded when saved, never fatal."""
    item.enrich_failures[step] = f"{type(error).__name__}: {error}"[:500]
    logger.warning(
        "enrichment step failed; the image is saved without it",
        extra={"step": step, "key": item.key, "error": item.enrich_failures[step]},
    )


def read_photo_exif(data: bytes, *, store_location: bool, image_id: str) -> ExifData:
    """The original's EXIF, its location dropped unless stored; odd fields are logged, never fatal."""
    exif = read_exif(data)
    if exif.problems:
        logger.warning("odd EXIF ignored", extra={"image_id": image_id, "problems": list(exif.problems)})
    return exif if store_location else exif.without_location()


class EmbeddingModels(Protocol):
    """The models new images are embedded with (`ModelRegistry.embedding_models`); `including` names
    models to look up again when they are not among them."""

    def __call__(self, *, including: Collection[str] = ()) -> Sequence[EmbeddingModel]: ...


class _ModelsMissing(Exception):
    """Raised inside a save's transaction (rolling it back): models joined after the item was embedded."""

    def __init__(self, model_ids: set[str]) -> None:
        super().__init__(sorted(model_ids))
        self.model_ids = model_ids


_MODEL_CHECKS = 3  # saves of one item, each after embedding it with models that joined meanwhile


def _thumbnail_of(parsed: object_keys.OriginalKey) -> list[str]:
    return [object_keys.thumbnail_key(parsed.tenant_id, parsed.image_id)] if parsed.image_id else []


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
        models: EmbeddingModels,
        *,
        max_upload_bytes: int,
        max_image_pixels: int,
        store_location: bool = True,
        publisher: EventPublisher | None = None,
        labeller: Labeller | None = None,
        enrich: bool = True,
    ) -> None:
        self.db = db
        self.labeller = labeller if enrich else None
        # False: embedding only, no place, hash, duplicate group or labels (bench/enrichment.py's baseline;
        # EXIF is still read, it is part of the record)
        self.enrich = enrich
        self.publisher = publisher or NoPublisher()
        self.storage = storage
        self._models = models
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.store_location = store_location

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
            record = self._claim(conn, item, key, parsed)
        if record is None:
            if item.note == Stray.DELETED:  # our own naming, and the image was deleted: drop the object
                self._delete_quietly(key, *_thumbnail_of(parsed))
            return
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
                data,
                max_bytes=self.max_upload_bytes,
                max_pixels=self.max_image_pixels,
                reduce_to=self._decode_side(),
            )
        except PayloadTooLarge as e:
            raise ImageRejected(e.detail, reason="too_large") from e
        item.exif = read_photo_exif(data, store_location=self.store_location, image_id=str(record.id))
        if self.enrich:
            self._enrich(item, item.decoded)
        self.storage.put(
            object_keys.thumbnail_key(record.tenant_id, record.id),
            make_thumbnail(item.decoded.image),
            content_type=THUMBNAIL_CONTENT_TYPE,
        )

    def _enrich(self, item: Prepared, decoded: DecodedImage) -> None:
        """The place of the photo's location and the image's perceptual hash; a failure is noted."""
        try:
            item.place = places.look_up(item.exif)
        except Exception as e:  # never fatal to the upload: noted, and the "place" step retries it
            enrichment_failed(item, "place", e)
        try:
            item.phash = phash(decoded.image)  # the reduced decode: within 2 bits of a full one
        except Exception as e:  # never fatal to the upload: noted, and the "phash" step retries it
            enrichment_failed(item, "phash", e)

    def _decode_side(self) -> int | None:
        """The shorter side one shared decode must keep for the thumbnail and every model's input (a JPEG
        is then decoded at reduced scale); None, a full decode, when a model does not say its input."""
        sides = [THUMBNAIL_SIZE]
        for model in self._models():
            size = getattr(model, "image_size", None)
            if size is None:
                return None
            sides.append(max(size))
        # a model registered later with a larger input upsamples this image a little (_embed_more)
        return max(sides)

    def _claim(
        self, conn: psycopg.Connection, item: Prepared, key: str, parsed: object_keys.OriginalKey
    ) -> ImageRecord | None:
        """The record the event is for, its attempt counted; None (and why, on `item`) if nothing to do."""
        event = item.event
        record = repository.get_by_key(conn, key)
        if record is None:
            record, why = strays.make_record(conn, self.storage, key, parsed)
            if record is None:
                item.outcome, item.note = Outcome.SKIPPED, why
                return None
            item.adopted = parsed.image_id is not None
        if record.status == "ready" and event.etag and record.object_etag == event.etag:
            item.outcome, item.note = Outcome.SKIPPED, "duplicate event"
            return None
        if sequencer_order(event.sequencer) < sequencer_order(record.sequencer):
            item.outcome, item.note = Outcome.SKIPPED, "stale event"
            return None
        repository.count_attempt(conn, record.id)
        return record

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
            self._label(todo)
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
        drop = (record.storage_key, object_keys.thumbnail_key(record.tenant_id, record.id))
        outcome, dropped = self._save_with_every_model(item, record)
        if dropped:  # only once the transaction that made it so is committed
            self._delete_quietly(*drop)
        if item.announcement is not None and outcome in (Outcome.READY, Outcome.FAILED):
            self.publisher.publish([item.announcement])
        if outcome is Outcome.READY:
            logger.info("image ready", extra={"image_id": str(record.id), "models": sorted(item.vectors)})
            metrics.add(IMAGES_EMBEDDED)
        elif outcome is Outcome.FAILED:
            metrics.add(IMAGES_FAILED)
        return outcome

    def _save_with_every_model(self, item: Prepared, record: ImageRecord) -> tuple[Outcome, bool]:
        """Save; when models joined since the item was embedded, embed it with them and save again."""
        for _ in range(_MODEL_CHECKS - 1):
            try:
                with self.db.connection() as conn:
                    return self._save(conn, item, record)
            except _ModelsMissing as missing:
                self._embed_more(item, missing.model_ids)
        with self.db.connection() as conn:
            return self._save(conn, item, record, check_models=False)

    def _save(
        self, conn: psycopg.Connection, item: Prepared, record: ImageRecord, *, check_models: bool = True
    ) -> tuple[Outcome, bool]:
        """(outcome, whether the object and its thumbnail go) within one transaction; raises
        _ModelsMissing (when `check_models`) if a model joined since the item was embedded."""
        event = item.event
        current = repository.get_by_key(conn, record.storage_key, for_update=True)
        if current is None:  # deleted while we worked; a tenant's deletion leaves its objects alone
            return Outcome.SKIPPED, repository.tombstoned(conn, record.tenant_id, record.id)
        if sequencer_order(event.sequencer) < sequencer_order(current.sequencer):
            return Outcome.SKIPPED, False  # a newer version was processed while we worked
        if item.outcome is Outcome.FAILED:
            repository.mark_failed(
                conn, record.id, item.note, object_etag=event.etag, sequencer=event.sequencer
            )
            item.announcement = outbox.record(conn, events.failed(record.tenant_id, record.id, item.note))
            logger.warning("image failed", extra={"image_id": str(record.id), "reason": item.note})
            return Outcome.FAILED, False
        decoded = item.decoded
        assert decoded is not None
        duplicate = repository.get_by_sha256(conn, record.tenant_id, decoded.sha256)
        if duplicate is not None and duplicate.id != record.id:
            if item.adopted and self._holds_its_original(duplicate):
                # The bytes are safe under the other image: the adopted copy goes (and stays gone).
                repository.delete(conn, record.tenant_id, record.id)
                logger.info(
                    "adopted original dropped as a duplicate",
                    extra={"image_id": str(record.id), "duplicate_of": str(duplicate.id)},
                )
                return Outcome.SKIPPED, True
            # Kept: the image's own record (the client learns it), or the only copy of the bytes.
            note = f"duplicate: the same bytes as image {duplicate.id}"
            repository.mark_failed(conn, record.id, note, object_etag=event.etag, sequencer=event.sequencer)
            item.announcement = outbox.record(conn, events.failed(record.tenant_id, record.id, note))
            return Outcome.FAILED, False
        # A model registered (reindex) after this batch read its list: its vector too, or a back-fill that
        # already passed this image would leave it without one.
        missing = models.embedding_model_ids(conn) - item.vectors.keys() - item.unavailable
        if missing and check_models:
            raise _ModelsMissing(missing)
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
            exif=item.exif,
        )
        if self.enrich:
            self._save_enrichment(conn, item, record)
        # A new version was enriched afresh: the failures of the one before are history.
        repository.set_enrich_failures(conn, record.id, item.enrich_failures)
        # The webhook deliveries commit with `ready`, or neither does.
        item.announcement = outbox.record(conn, events.ready(record.tenant_id, record.id))
        return Outcome.READY, False

    def _save_enrichment(self, conn: psycopg.Connection, item: Prepared, record: ImageRecord) -> None:
        places.store(conn, record.id, item.place)
        if item.auto_tags is not None:
            repository.set_auto_tags(conn, record.id, list(item.auto_tags.tags), model=item.auto_tags.model)
        why_not = duplicates.group_image(
            conn, tenant_id=record.tenant_id, image_id=record.id, phash=item.phash
        )
        if why_not is not None:
            item.enrich_failures["phash"] = why_not

    def _label(self, items: list[Prepared]) -> None:
        """Labels from each item's vector of the active model; an error leaves them to the back-fill."""
        if self.labeller is None:
            return
        for item in items:
            try:
                item.auto_tags = self.labeller.label(item.vectors)
            except Exception as e:  # never fatal to the upload: noted, and the "labels" step retries it
                enrichment_failed(item, "labels", e)
                item.auto_tags = NOT_LABELLED

    def _embed_more(self, item: Prepared, model_ids: set[str]) -> None:
        """Add the vectors of `model_ids` to a prepared item; those not loadable here are noted."""
        decoded = item.decoded
        assert decoded is not None
        for model in self._models(including=model_ids):
            if model.model_id not in model_ids:
                continue
            try:
                item.vectors[model.model_id] = model.embed_images([decoded.image])[0]
            except ImageRejected as e:
                logger.warning(
                    "a back-filled model refused the image",
                    extra={"model_id": model.model_id, "reason": e.reason, "key": item.key},
                )
                item.unavailable.add(model.model_id)
        item.unavailable |= model_ids - item.vectors.keys()

    def _holds_its_original(self, record: ImageRecord) -> bool:
        """Whether the record's bytes are known (ready) and its original is still there."""
        return record.status == "ready" and self.storage.exists(record.storage_key)

    def _delete_quietly(self, *object_keys: str) -> None:
        for key in object_keys:
            try:
                self.storage.delete(key)
            except Exception:  # best effort: reconcile removes what is left
                logger.warning("could not delete object", extra={"key": key})
