"""`imagesearch reindex`: back-fill a model's vectors beside the active model's, resumably.

The model is registered in state `backfill` first, which makes the embed function add its vectors for new
uploads too (an upload saved after the registration gets them, imagesearch.ingest.processor); then every
`ready` image that has no vector of the model yet is embedded here, in batches (`reindex`), or its id is
sent to the ingestion queue for the embed function to embed (`enqueue_backfill`). Either way a second run
does only what is left. `imagesearch model activate` then switches search to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from imagesearch.db import Database, embeddings
from imagesearch.db import model_records as records
from imagesearch.db.model_records import ModelRecord
from imagesearch.errors import ImageRejected, ImageSearchError, ObjectNotFound
from imagesearch.imaging import open_image
from imagesearch.ingest.backfill import ReindexMessage
from imagesearch.model.embedder import EmbeddingModel
from imagesearch.model.registry import ModelRegistry
from imagesearch.storage import ObjectStorage

ZERO_UUID = UUID(int=0)


@dataclass
class ReindexReport:
    embedded: int = 0
    skipped: list[str] = field(default_factory=list)  # images that could not be read now


def missing_count(db: Database, model_id: str) -> int:
    """How many ready images lack a vector of `model_id`."""
    with db.connection() as conn:
        return embeddings.missing_count(conn, model_id)


def reindex(
    models: ModelRegistry,
    storage: ObjectStorage,
    model: EmbeddingModel,
    *,
    bundle_uri: str | None,
    max_image_pixels: int,
    batch_size: int = 32,
    progress: Callable[[int], object] = lambda _: None,
) -> ReindexReport:
    """Embed every ready image lacking a vector of `model`; `progress(n)` after each batch of n."""
    register_for_backfill(models, model, bundle_uri=bundle_uri)
    db = models.db
    report = ReindexReport()
    after = ZERO_UUID
    while True:
        with db.connection() as conn:
            rows = embeddings.missing(conn, model.model_id, after=after, limit=batch_size)
        if not rows:
            return report
        after = rows[-1][0]
        images, targets = [], []
        for image_id, key in rows:
            try:
                images.append(open_image(storage.get(key), max_pixels=max_image_pixels))
                targets.append(image_id)
            except (ImageRejected, ObjectNotFound) as e:
                report.skipped.append(f"{image_id}: {e}")
        if images:
            vectors = model.embed_images(images)
            with db.connection() as conn:
                for image_id, vector in zip(targets, vectors, strict=True):
                    # An image deleted meanwhile is skipped.
                    if embeddings.upsert(conn, image_id=image_id, model_id=model.model_id, embedding=vector):
                        report.embedded += 1
        progress(len(rows))


def register_for_backfill(
    models: ModelRegistry, model: EmbeddingModel, *, bundle_uri: str | None
) -> ModelRecord:
    """Register `model` beside the active one (a retired one goes back to back-fill: a roll-back), so that
    new uploads get its vectors from now on; its record."""
    record = models.register(model, bundle_uri=bundle_uri)
    if record.state == "retired":
        with models.db.connection() as conn:
            records.resume_backfill(conn, record.id)
        record.state = "backfill"
    return record


class MessageQueue(Protocol):
    """Where back-fill messages go (imagesearch.ingest.sqs_sender.SqsSender)."""

    def send(self, bodies: Sequence[str]) -> None: ...


@dataclass
class EnqueueReport:
    images: int = 0
    messages: int = 0


MESSAGES_PER_SEND = 10  # SQS takes ten per SendMessageBatch


def send_in_messages(
    queue: MessageQueue,
    next_ids: Callable[[UUID, int], list[UUID]],
    body: Callable[[list[UUID]], str],
    *,
    images_per_message: int,
    progress: Callable[[int], object] = lambda _: None,
) -> EnqueueReport:
    """Send every id `next_ids(after, limit)` gives (ascending ids after `after`, at most `limit`), a
    batch of `images_per_message` per message body; `progress(n)` after each send of n images."""
    report = EnqueueReport()
    after = ZERO_UUID
    while ids := next_ids(after, images_per_message * MESSAGES_PER_SEND):
        after = ids[-1]
        bodies = [body(ids[i : i + images_per_message]) for i in range(0, len(ids), images_per_message)]
        queue.send(bodies)
        report.images += len(ids)
        report.messages += len(bodies)
        progress(len(ids))
    return report


def enqueue_backfill(
    db: Database,
    queue: MessageQueue,
    model_id: str,
    *,
    images_per_message: int,
    progress: Callable[[int], object] = lambda _: None,
) -> EnqueueReport:
    """Send the ids of every ready image lacking a vector of `model_id` (register it first), a batch per
    message; `progress(n)` after each send of n images."""

    def missing(after: UUID, limit: int) -> list[UUID]:
        with db.connection() as conn:
            return [image_id for image_id, _ in embeddings.missing(conn, model_id, after=after, limit=limit)]

    def body(ids: list[UUID]) -> str:
        return ReindexMessage(model_id=model_id, image_ids=ids).body()

    return send_in_messages(queue, missing, body, images_per_message=images_per_message, progress=progress)


def activate(db: Database, model_id: str, *, force: bool = False) -> None:
    """Switch search to `model_id`; refuses while ready images lack its vectors unless `force`."""
    with db.connection() as conn:
        if records.get_model(conn, model_id) is None:
            raise ImageSearchError(f"no model {model_id!r}: run `imagesearch reindex` with its bundle first")
    missing = missing_count(db, model_id)
    if missing and not force:
        raise ImageSearchError(
            f"{missing} ready images have no vector of {model_id}: "
            "run `imagesearch reindex` first (or pass --force)"
        )
    with db.connection() as conn:
        records.activate(conn, model_id)
