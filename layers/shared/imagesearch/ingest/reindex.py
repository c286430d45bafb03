"""`imagesearch reindex`: back-fill a model's vectors beside the active model's, resumably.

It embeds every `ready` image that has no vector of the model yet, in batches, so an interrupted run
continues where it stopped. The model is registered in state `backfill`, which makes the embed function add
its vectors for new uploads too; `imagesearch model activate` then switches search to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from imagesearch.db import Database
from imagesearch.db import models as model_rows
from imagesearch.errors import ImageRejected, ImageSearchError, ObjectNotFound
from imagesearch.imaging import open_image
from imagesearch.model.embedder import EmbeddingModel
from imagesearch.storage import ObjectStorage

MISSING_SQL = """
    SELECT i.id, i.tenant_id, i.storage_key FROM images i
    WHERE i.status = 'ready' AND i.id > %(after)s
      AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model_id = %(model)s)
    ORDER BY i.id
    LIMIT %(limit)s
"""
ZERO_UUID = UUID(int=0)


@dataclass
class ReindexReport:
    embedded: int = 0
    skipped: list[str] = field(default_factory=list)  # images that could not be read now


def missing_count(db: Database, model_id: str) -> int:
    """How many ready images lack a vector of `model_id`."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM images i WHERE i.status = 'ready' AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model_id = %s)",
            (model_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def reindex(
    db: Database,
    storage: ObjectStorage,
    model: EmbeddingModel,
    *,
    bundle_uri: str | None,
    max_image_pixels: int,
    batch_size: int = 32,
    progress: Callable[[int], object] = lambda _: None,
) -> ReindexReport:
    """Embed every ready image lacking a vector of `model`; `progress(n)` after each batch of n."""
    manifest = getattr(model, "manifest", None)
    with db.connection() as conn:
        model_rows.register_model(
            conn,
            model_id=model.model_id,
            dim=model.dim,
            manifest=manifest.model_dump(mode="json") if manifest is not None else None,
            bundle_uri=bundle_uri,
        )
    report = ReindexReport()
    after = ZERO_UUID
    while True:
        with db.connection() as conn:
            rows = conn.execute(
                MISSING_SQL, {"after": after, "model": model.model_id, "limit": batch_size}
            ).fetchall()
        if not rows:
            return report
        after = rows[-1][0]
        images, targets = [], []
        for image_id, tenant_id, key in rows:
            try:
                images.append(open_image(storage.get(key), max_pixels=max_image_pixels))
                targets.append((image_id, tenant_id))
            except (ImageRejected, ObjectNotFound) as e:
                report.skipped.append(f"{image_id}: {e}")
        if images:
            vectors = model.embed_images(images)
            with db.connection() as conn:
                for (image_id, tenant_id), vector in zip(targets, vectors, strict=True):
                    # The image may have been deleted meanwhile; the lock keeps it until this commits.
                    if conn.execute(
                        "SELECT 1 FROM images WHERE id = %s FOR KEY SHARE", (image_id,)
                    ).fetchone():
                        model_rows.upsert_embedding(
                            conn,
                            image_id=image_id,
                            tenant_id=tenant_id,
                            model_id=model.model_id,
                            embedding=vector,
                        )
                        report.embedded += 1
        progress(len(rows))


def activate(db: Database, model_id: str, *, force: bool = False) -> None:
    """Switch search to `model_id`; refuses while ready images lack its vectors unless `force`."""
    with db.connection() as conn:
        if model_rows.get_model(conn, model_id) is None:
            raise ImageSearchError(f"no model {model_id!r}: run `imagesearch reindex` with its bundle first")
    missing = missing_count(db, model_id)
    if missing and not force:
        raise ImageSearchError(
            f"{missing} ready images have no vector of {model_id}: "
            "run `imagesearch reindex` first (or pass --force)"
        )
    with db.connection() as conn:
        model_rows.activate(conn, model_id)
