"""`imagesearch reindex`: back-fill a model's vectors beside the active model's, resumably.

It embeds every `ready` image that has no vector of the model yet, in batches, so an interrupted run
continues where it stopped. The model is registered in state `backfill`, which makes the embed function add
its vectors for new uploads too; `imagesearch model activate` then switches search to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from imagesearch.db import Database, embeddings
from imagesearch.db import model_records as records
from imagesearch.errors import ImageRejected, ImageSearchError, ObjectNotFound
from imagesearch.imaging import open_image
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
    models.register(model, bundle_uri=bundle_uri)
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
